"""The study pipeline: one TOML config -> cached, resumable tasks -> a run directory.

    from advtopo.study import StudyConfig, run_study, open_run
    run = open_run(run_study("study.toml"))
    run.activations("lenet5_eps0", "fc1", "pgd", 0.1)   # N x D array
    run.samples                                          # DataFrame
"""
from advtopo.study.config import ConfigCheck, StudyConfig, check_config, demo_config_path, load_config
from advtopo.study.results import Run, format_summary, list_runs, open_run
from advtopo.study.run import publish, run_study
from advtopo.study.plan import STAGES, make_plan
from advtopo.study.executors import DaskExecutor, SequentialExecutor, make_executor
from advtopo.study.tasks import Task, execute_task

__all__ = ["StudyConfig", "load_config", "check_config", "ConfigCheck", "demo_config_path", "run_study", "publish", "open_run", "Run",
           "list_runs", "format_summary", "STAGES", "make_plan", "Task", "execute_task", "SequentialExecutor",
           "DaskExecutor", "make_executor"]
