"""Run-time settings: the environment (fast mode, device: ``config``) and progress bars
(``progress``)."""
