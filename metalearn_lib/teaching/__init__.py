"""The course's teaching layer: what the chapters run, draw and check.

It stands on the core (tasks, models, algorithms, training, ...) and on the
grading question engine; neither imports anything from here. One idea per
module:

* :mod:`.experiments` - chapter 4's seeded experiments (one module each); they
  return numbers, the chapter says what they mean;
* :mod:`.figures` (every chapter), :mod:`.figures_limitations` and
  :mod:`.figures_limitations_extra` (chapter 4) - figure functions that only
  draw what they are given;
* :mod:`.widgets` - the chapters' explorers (one module each), small classes
  built on ``observe`` whose logic runs without a browser;
* :mod:`.selfcheck` - the one self-check system (exercises with hints, and
  practice questions on the grading engine's ``Question``), with the
  exercises of chapters 1, 2, 3 and 5 in :mod:`.exercises`, chapter 4's in
  :mod:`.exercises_limitations` and its practice questions in :mod:`.practice`;
* :mod:`.gradients` - MAML's meta-gradient two more ways, and the cosine
  between update directions;
* :mod:`.cache` - train once per kernel.
"""
