# What the user watching the terminal sees: the run's plan first (dataset, B, K, models per stage,
# baselines, estimated cost: `pnas plan`, which also keeps it as results/<name>/plan.json for
# `pnas status`), then one line per stage from each training job (rules/train.smk writes it to the
# terminal on file descriptor 3 while the details go to the job's log). Runs on real runs only (not
# on a dry run); a plan that cannot be printed does not stop the run.
import json
import subprocess
import tempfile


onstart:
    with tempfile.TemporaryDirectory() as _tmp:
        _config, _train = Path(_tmp) / "config.json", Path(_tmp) / "train.json"
        _config.write_text(json.dumps(config, default=str))
        _train.write_text(json.dumps(train_settings(config["seed"])))
        _cmd = ["pnas", "plan", "--config", str(_config), "--train-settings", str(_train)]
        if subprocess.run([*_cmd, "--out", f"{RESULTS}/plan.json"]).returncode:
            print("pnas: the plan above could not be made; the run goes on", flush=True)
