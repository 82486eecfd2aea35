# Every config key checked before any job runs (a dry run fails too), each error one line naming its
# key: scripts/config_check.py (the top level against config.schema.yaml, which also fills in the
# defaults of keys a config leaves out; the train, surrogate and final sections against the schemas
# `pnas schema` generates from the settings dataclasses; then the checks that span keys). The config
# files and the config itself are size-checked first, so an oversized or alias-bomb config is refused
# at once. An image folder's class folders are listed too: one without images is named before any job
# (scripts/image_folder_check.py). Parse time stays cheap: plain JSON/YAML schemas, directory
# listings, no torch import, and of pnas_core only pnas_core.limits and pnas_core.rungs (the bounds and
# early stopping's rules, standard library only; the library checks with the same functions).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))  # config_check here, code_closure in common.smk
from config_check import ConfigError, check_config, check_files, section_default  # noqa: E402
from image_folder_check import empty_class_folders  # noqa: E402

try:
    check_files([*workflow.overwrite_configfiles, *workflow.configfiles])
    check_config(config)  # data_root is a folder when the dataset needs one
    if config["dataset"] == "imagefolder" and (_empty := empty_class_folders(Path(config["data_root"]))):
        raise ConfigError(
            f"class folder(s) without .png/.jpg images: {', '.join(map(str, _empty))}; add images or remove them"
        )
except ConfigError as _error:
    raise WorkflowError(str(_error)) from None


def train_value(key):
    """A train setting: the config's value, else the settings dataclass's default (from its schema)."""
    return config["train"].get(key, section_default("train", key))
