"""The course's tooling: the exercise-6/7 metrics, figures, model analysis and report runs."""
