"""Moved to :mod:`metalearn_lib.grading.quiz`; this alias keeps old imports working."""

from .grading.quiz import *  # noqa: F403
from .grading.quiz import __all__  # noqa: F401
