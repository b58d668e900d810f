"""The course's teaching layer: what the chapters run, draw, and check.

It stands on the core (tasks, models, algorithms, training, ...) and on the
grading question engine; neither imports anything from here.
"""
