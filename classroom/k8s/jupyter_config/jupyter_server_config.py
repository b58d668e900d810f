"""Single-user server settings baked into the image (/etc/jupyter/jupyter_server_config.py).

Not exercised by the tests. Students' servers do not load the grader's
extensions (a student's /formgrader answers 404), as on the one-server hub.
"""

import os

c = get_config()  # noqa: F821
if os.environ.get("MAML_ROLE") != "instructor":
    c.ServerApp.jpserver_extensions = {
        "nbgrader.server_extensions.formgrader": False,
        "nbgrader.server_extensions.course_list": False,
    }
