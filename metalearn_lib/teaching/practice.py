"""The practice questions of chapter 4 (the limitations of MAML).

Select-all-that-apply questions built on the grading engine's
:class:`~metalearn_lib.grading.quiz.Question`, with an explanation per statement;
:func:`~metalearn_lib.teaching.selfcheck.practice_feedback` checks an answer.
"""

from __future__ import annotations

from ..grading.quiz import Question

__all__ = ["limitations_practice"]


def limitations_practice() -> list[Question]:
    """The practice questions of chapter 4 (variants and limitations), with explanations.

    Every statement is backed by an experiment of the chapter (or the maths
    of chapter 2); the explanations say which.
    """
    return [
        Question(
            "Time, memory and what they buy (experiment 1): which statements are true?",
            [
                "Reptile's meta-step skips a computation that FOMAML's makes: the gradient of "
                "each task's query loss at the adapted parameters.",
                "Knowing each algorithm's time per meta-iteration is enough to tell which one "
                "reaches a given loss first.",
                "Switching from MAML to FOMAML changes the adapted parameters each task reaches "
                "in the inner loop.",
                "With a fixed memory budget, the largest number of inner steps you can afford "
                "is smaller for MAML than for FOMAML.",
                "The three algorithms are judged on the same fresh test tasks, so their losses "
                "can be compared task by task (a paired comparison).",
            ],
            key={"A", "D", "E"},
            explanations={
                "A": "True: Reptile's direction is theta minus the adapted parameters; FOMAML "
                "also backpropagates each task's query loss. With many inner steps the inner loop "
                "dominates the time of both, so the saving is small.",
                "B": "False: what matters is time per iteration times the iterations needed; "
                "that is why experiment 1 plots the training loss against seconds.",
                "C": "False: the inner loop is the same plain gradient descent; only the outer "
                "direction differs (the Hessian terms are dropped).",
                "D": "True: MAML's peak memory rises with the inner steps while FOMAML's stays "
                "nearly flat (experiment 1, memory panel), and at every network size of section "
                "1b MAML needed several times FOMAML's memory.",
                "E": "True: evaluate() draws its test tasks from a fixed seed, and the reading "
                "quotes paired differences with their 95% intervals.",
            },
            question_id="Practice 1",
        ),
        Question(
            "About task diversity (experiment 2 and the widget), which statements are true?",
            [
                "The pretrain baseline is a fair comparison: it sees tasks from the same "
                "distribution and is adapted the same way at test time; only its training "
                "objective differs.",
                "Where MAML's advantage over pretraining is larger, MAML's own loss is lower.",
                "If no single starting point is a few small gradient steps away from most tasks, "
                "MAML's advantage over pretraining can vanish.",
                "Pretraining on sinusoids with random phases learns roughly their average, which "
                "is close to a flat line.",
                "A widget run at a diversity of the sweep, with the sweep's settings, lands on the "
                "sweep's point: same recipe, same seeds, same test tasks.",
            ],
            key={"A", "C", "E"},
            explanations={
                "A": "True: both runs use the same tasks, iterations and test-time adaptation "
                "(train_at_diversity); pretraining minimizes the loss before adaptation, MAML "
                "the loss after it.",
                "B": "False: the advantage is a difference of two losses; in the sweep it can "
                "grow with diversity while MAML's own loss rises too.",
                "C": "True: at the widest setting of the sweep, look at the advantage panel and "
                "its 95% interval.",
                "D": "False: chapter 1 shows that the average of the MAML paper's sinusoids "
                "is about -1.62 cos x, not flat: the phases cover only half a period, [0, pi], "
                "so the sines do not cancel, and pretraining learns roughly that curve.",
                "E": "True: the widget calls the same train_at_diversity as the sweep, and every "
                "random draw is seeded.",
            },
            question_id="Practice 2",
        ),
        Question(
            "Dissimilar and drifting tasks (experiments 3 and 4): which statements are true?",
            [
                "A shared initialization for a mixture of families is a compromise, and the "
                "families with larger losses pull it harder, since the meta-gradient averages "
                "the task losses.",
                "Using one initialization per family at test time requires knowing (or "
                "inferring) which family a new task belongs to.",
                "Before the drift began, the initialization was already a good start for the "
                "late tasks, since they are sines too.",
                "After a drift, the final initialization is tuned to the most recent tasks.",
                "A low meta-training loss at the end of training shows that the initialization "
                "still suits the tasks seen at the start.",
            ],
            key={"A", "B", "D"},
            explanations={
                "A": "True: MAML minimizes the mean post-adaptation loss over tasks; families "
                "with large losses dominate that mean (experiment 3, losses before adaptation).",
                "B": "True: to pick the right start, the learner must know the family; that is "
                "extra information the shared initialization does not need.",
                "C": "False: the late sines are the early ones upside down; in experiment 4 the "
                "late-task loss stayed near its untrained level before the drift while the "
                "early-task loss fell.",
                "D": "True: experiment 4, late-task curve and adapted fits.",
                "E": "False: the meta-training loss is computed on the tasks of the moment; only "
                "the separate evaluation on early tasks in experiment 4 shows they were forgotten.",
            },
            question_id="Practice 3",
        ),
        Question(
            "Hyperparameters of MAML (section 5): which statements are true?",
            [
                "The untrained network's loss after a row's own adaptation, measured before any "
                "meta-training, already warns when that row's inner learning rate is too large.",
                "If the inner loop produces NaN, switching the meta-optimizer from SGD to Adam "
                "fixes it.",
                "With the same meta learning rate, SGD and Adam move the weights by similar "
                "amounts.",
                "A larger meta-batch averages the meta-gradient over more tasks, which makes it "
                "less noisy.",
                "More inner steps help whatever the inner learning rate.",
            ],
            key={"A", "D"},
            explanations={
                "A": "True: the grid's reading quotes it; with a large inner learning rate it is "
                "far above the loss without adaptation, before MAML has trained at all.",
                "B": "False: a NaN meta-gradient makes NaN weights whatever the optimizer does "
                "with it; the fix is a smaller inner learning rate (or fewer steps).",
                "C": "False: SGD's step is lr × gradient, Adam's is about lr per weight; MAML's "
                "meta-gradient entries are small (the grid's third column), and the tuning shows "
                "the two optimizers behaving very differently at the same rates.",
                "D": "True: the meta-gradient is a mean over the batch's tasks; its variance "
                "falls roughly as 1 / batch size (in the grid, 16 tasks gave a lower loss than 4 "
                "wherever both Adam cells learned).",
                "E": "False: with a large inner learning rate, every extra step compounds the "
                "overshoot (the grid's 3-step, large-lr row).",
            },
            question_id="Practice 4",
        ),
    ]
