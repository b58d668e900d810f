"""nbgrader settings baked into the single-user image (/etc/jupyter/nbgrader_config.py).

Not exercised by the tests (see classroom/Dockerfile). The instructors' profile
of values.yaml sets MAML_ROLE=instructor and mounts the course root at
~/maml-course-grading; everyone else is a student.
"""

import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "maml-course"
c.Exchange.root = "/srv/nbgrader/exchange"  # the ReadWriteMany volume
if os.environ.get("MAML_ROLE") == "instructor":
    root = os.path.expanduser("~/maml-course-grading")
    if os.path.exists(os.path.join(root, "nbgrader_config.py")):
        load_subconfig("nbgrader_config.py", path=root)  # noqa: F821 (the course's own)
    c.CourseDirectory.root = root
else:
    c.Exchange.path_includes_course = True
