"""Study config validation: every mistake is caught before any work, with a useful message."""
from __future__ import annotations

import pytest

from advtopo.errors import AdvtopoError
from advtopo.study import StudyConfig, demo_config_path, load_config
from advtopo.study.config import dumps_toml


def base() -> dict:
    return {"name": "t", "dataset": {"name": "digits", "subset": 50},
            "models": [{"arch": "lenet5", "train": {"method": "standard", "eps": 0.0, "epochs": 1}}],
            "attacks": [{"name": "pgd", "eps": [0.0, 0.1]}],
            "layers": [{"module": "fc1"}]}


def test_demo_and_example_configs_are_valid():
    cfg = load_config(demo_config_path())
    assert len(cfg.models) >= 4 and cfg.dataset.name == "mnist"
    assert cfg.attacks[0].eps == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    cfg.check_layers_against_models()
    # the default demo loads the zoo's models; --train trains the same four from scratch
    assert all(m.checkpoint and m.checkpoint.startswith("zoo:") for m in cfg.models)
    assert len(cfg.layers) >= 3 and {m.rows for m in cfg.mapper} == {"both", "adversarial"}
    train_cfg = load_config(demo_config_path(train=True))
    assert all(m.train and not m.checkpoint for m in train_cfg.models)
    # the same model names, so the default demo's [recovery] section fits both
    assert train_cfg.model_names == cfg.model_names
    assert train_cfg.recovery == cfg.recovery and cfg.recovery.enabled
    assert train_cfg.output_dir() != cfg.output_dir()
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "study.toml"
    load_config(example).check_layers_against_models()


def test_unknown_key_suggests_the_right_one():
    d = base()
    d["atacks"] = d.pop("attacks")
    with pytest.raises(AdvtopoError, match=r"unknown key 'atacks' \(did you mean 'attacks'\?\)"):
        StudyConfig.from_dict(d)
    d = base()
    d["dataset"]["subest"] = 3
    with pytest.raises(AdvtopoError, match=r"unknown key 'dataset.subest' \(did you mean 'subset'\?\)"):
        StudyConfig.from_dict(d)
    d = base()
    d["layers"][0]["sumary"] = "gap"
    with pytest.raises(AdvtopoError, match=r"layers\[0\].sumary.*did you mean 'summary'"):
        StudyConfig.from_dict(d)


def test_wrong_types_name_the_key_and_the_type():
    d = base()
    d["attacks"][0]["steps"] = "ten"
    with pytest.raises(AdvtopoError, match=r"attacks\[0\].steps='ten' has the wrong type; expected integer"):
        StudyConfig.from_dict(d)
    d = base()
    d["attacks"][0]["eps"] = 0.1
    with pytest.raises(AdvtopoError, match=r"attacks\[0\].eps=0.1 has the wrong type; expected list of number"):
        StudyConfig.from_dict(d)
    d = base()
    d["models"] = {"arch": "lenet5"}
    with pytest.raises(AdvtopoError, match=r"models must be an array of tables"):
        StudyConfig.from_dict(d)


def test_eps_out_of_range_and_bad_choices():
    d = base()
    d["attacks"][0]["eps"] = [0.0, 8]
    with pytest.raises(AdvtopoError, match=r"attacks\[0\].eps\[1\]=8.* out of range.*\[0, 1\]"):
        StudyConfig.from_dict(d)
    d = base()
    d["models"][0]["train"]["eps"] = -0.1
    with pytest.raises(AdvtopoError, match=r"models\[0\].train.eps=-0.1 is out of range"):
        StudyConfig.from_dict(d)
    d = base()
    d["layers"][0]["summary"] = "toplz"
    with pytest.raises(AdvtopoError, match=r"layers\[0\].summary='toplz'.*did you mean 'top_l2'"):
        StudyConfig.from_dict(d)
    d = base()
    d["models"][0]["arch"] = "lenet"
    with pytest.raises(AdvtopoError, match=r"unknown model 'lenet'.*did you mean 'lenet5'"):
        StudyConfig.from_dict(d)
    d = base()
    d["attacks"][0]["name"] = "pgdd"
    with pytest.raises(AdvtopoError, match=r"did you mean 'pgd'"):
        StudyConfig.from_dict(d)
    d = base()
    d["models"][0]["train"]["methd"] = "fgsm"
    with pytest.raises(AdvtopoError, match=r"models\[0\].train"):
        StudyConfig.from_dict(d)


def test_layers_are_checked_against_the_model():
    d = base()
    d["layers"][0]["module"] = "fc_1"
    cfg = StudyConfig.from_dict(d)
    with pytest.raises(AdvtopoError, match=r"unknown layer 'fc_1' \(did you mean 'fc1'\?\)"):
        cfg.check_layers_against_models()


def test_duplicate_model_names_and_missing_sections():
    d = base()
    d["models"].append(dict(d["models"][0]))
    with pytest.raises(AdvtopoError, match="model names must be unique"):
        StudyConfig.from_dict(d)
    d = base()
    del d["layers"]
    with pytest.raises(AdvtopoError, match=r"at least one \[\[layers\]\]"):
        StudyConfig.from_dict(d)


def test_stage_references_are_checked_with_the_config():
    """[activation_graph] and [recovery] name a study model, attack and eps: a wrong one fails the
    config check (`advtopo run --check`), not the plan; eps match as the plan matches them."""
    from advtopo.errors import ConfigErrors
    from advtopo.study import make_plan

    d = base()
    d["attacks"][0]["eps"] = [0.0, 8 / 255, 0.1]
    for section in ("activation_graph", "recovery"):
        # 8/255 by its key in ids and file names: accepted by the check and by the plan alike
        cfg = StudyConfig.from_dict(d | {section: {"enabled": True, "eps": [0.0313725]}})
        make_plan(cfg)
        with pytest.raises(ConfigErrors, match=rf"{section}.eps: 0.2 is not an eps of attack 'pgd'; "
                                               r"allowed: 0.0313725, 0.1"):
            StudyConfig.from_dict(d | {section: {"enabled": True, "eps": [0.1, 0.2]}})
        with pytest.raises(ConfigErrors, match=rf"{section}.attack='pgdd' is not valid \(did you mean 'pgd'"):
            StudyConfig.from_dict(d | {section: {"enabled": True, "attack": "pgdd"}})
    with pytest.raises(ConfigErrors, match=r"activation_graph.model='lenet5_eps' is not valid "
                                           r"\(did you mean 'lenet5_eps0'"):
        StudyConfig.from_dict(d | {"activation_graph": {"enabled": True, "model": "lenet5_eps"}})
    with pytest.raises(ConfigErrors, match=r"recovery.models has repeated names: \['lenet5_eps0', 'lenet5_eps0'\]"):
        StudyConfig.from_dict(d | {"recovery": {"enabled": True, "models": ["lenet5_eps0", "lenet5_eps0"]}})
    with pytest.raises(ConfigErrors) as caught:  # both sections' problems at once
        StudyConfig.from_dict(d | {"activation_graph": {"enabled": True, "eps": [0.5]},
                                   "recovery": {"enabled": True, "attack": "fgsm"}})
    assert [p.split(":")[0].split("=")[0] for p in caught.value.problems] == ["activation_graph.eps", "recovery.attack"]


def test_toml_roundtrip(tmp_path):
    cfg = StudyConfig.from_dict(base())
    path = tmp_path / "s.toml"
    path.write_text(dumps_toml(cfg.to_dict()))
    again = StudyConfig.from_toml(path)
    assert again.to_dict() == cfg.to_dict()
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(AdvtopoError, match="not valid TOML"):
        StudyConfig.from_toml(bad)


def test_mapper_and_persistence_settings_are_checked_by_their_stages():
    d = base()
    d["mapper"] = [{"lens": "l2nrom"}]
    with pytest.raises(AdvtopoError, match=r"mapper\[0\].*did you mean 'l2norm'"):
        StudyConfig.from_dict(d)
    d = base()
    d["mapper"] = [{"options": {"n_intervalz": 3}}]
    with pytest.raises(AdvtopoError, match=r"mapper\[0\]"):
        StudyConfig.from_dict(d)
    d = base()
    d["persistence"] = {"settings": {"max_pionts": 10}}
    with pytest.raises(AdvtopoError, match=r"persistence.settings: unknown persistence setting 'max_pionts'"):
        StudyConfig.from_dict(d)


def test_a_model_needs_an_arch_unless_passed_as_an_object():
    d = base()
    d["models"] = [{"name": "mine"}]
    with pytest.raises(AdvtopoError, match=r"models\[0\] \(mine\) needs arch: .*run_study\(models="):
        StudyConfig.from_dict(d)
    cfg = StudyConfig.from_dict(d, model_objects=["mine"])
    assert cfg.model_names == ["mine"]
    d["models"] = [{"name": "mine", "arch": "lenet5"}]
    with pytest.raises(AdvtopoError, match=r"passed as an object .* used as is; leave out arch"):
        StudyConfig.from_dict(d, model_objects=["mine"])


def test_model_spec_keys_are_checked():
    d = base()
    d["models"] = [{"arch": "lenet5", "mean": [0.5]}]
    with pytest.raises(AdvtopoError, match=r"give both mean and std"):
        StudyConfig.from_dict(d)
    d["models"] = [{"arch": "lenet5", "mean": [0.5], "std": [0.0]}]
    with pytest.raises(AdvtopoError, match=r"std > 0"):
        StudyConfig.from_dict(d)
    d["models"] = [{"arch": "lenett5"}]
    with pytest.raises(AdvtopoError, match=r"models\[0\]\.arch: .*did you mean 'lenet5'"):
        StudyConfig.from_dict(d)
    d["models"] = [{"arch": "nets/model.py:net"}]  # default name from the factory, not the path
    with pytest.raises(AdvtopoError, match=r"arch file .*nets/model.py does not exist"):
        StudyConfig.from_dict(d)


def test_cifar10_example_is_valid_but_for_the_users_files():
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "cifar10_robust.toml"
    with pytest.raises(AdvtopoError, match=r"models\[0\] \(wrn28_10_robust\)\.checkpoint: .*examples/checkpoints/"
                                           r"Carmon2019Unlabeled.pt does not exist \(relative to the config's folder"):
        StudyConfig.from_toml(example)


def test_mapper_sets_are_typed_params_and_errors_name_the_key():
    from advtopo.mapper import MapperParams

    d = base()
    d["mapper"] = [{"name": "a", "n_intervals": 12, "overlap": 0, "eps": 1, "metric": "cosine"},
                   {"name": "b", "rows": "adversarial", "n_jobs": 2, "options": {"random_state": 0}}]
    cfg = StudyConfig.from_dict(d)
    assert cfg.mapper[0].mapper == MapperParams(n_intervals=12, overlap=0.0, eps=1.0, metric="cosine")
    assert cfg.mapper[1].mapper == MapperParams(n_jobs=2, random_state=0) and cfg.mapper[1].rows == "adversarial"
    # the task keys' form: the study keys always, the options as given (even at their default)
    assert cfg.mapper[1].params() == {"lens": "l2norm", "cover": "uniform", "n_intervals": 10, "overlap": 0.3,
                                      "clusterer": "dbscan", "eps": "auto", "min_samples": 5, "metric": "euclidean",
                                      "n_jobs": 2, "random_state": 0}
    # written back as read: n_jobs in the table, random_state under options
    assert list(cfg.to_dict()["mapper"][1].items()) == [
        ("name", "b"), ("lens", "l2norm"), ("cover", "uniform"), ("n_intervals", 10), ("overlap", 0.3),
        ("clusterer", "dbscan"), ("eps", "auto"), ("min_samples", 5), ("metric", "euclidean"), ("n_jobs", 2),
        ("rows", "adversarial"), ("options", {"random_state": 0})]
    assert StudyConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    for mapper, message in [
        ([{}, {"overlap": 1.5}], r"mapper\[1\]\.overlap=1.5 is not valid; allowed: a number in \[0, 1\)"),
        ([{"n_intervalz": 3}], r"unknown key 'mapper\[0\]\.n_intervalz' \(did you mean 'n_intervals'\?\); "
                               r"allowed in mapper\[0\]: name, lens"),
        ([{"options": {"n_jbos": 3}}], r"unknown key 'mapper\[0\]\.options\.n_jbos' \(did you mean 'n_jobs'\?\)"),
        ([{"options": {"n_intervals": 3}}], r"mapper\[0\]\.options\.n_intervals: set n_intervals in the "
                                            r"\[\[mapper\]\] table itself"),
        ([{"n_jobs": 2, "options": {"n_jobs": 3}}], r"mapper\[0\]\.options\.n_jobs is also set"),
        ([{"n_intervals": "ten"}], r"mapper\[0\]\.n_intervals='ten' has the wrong type; expected integer"),
        ([{"options": {"n_jobs": 0}}], r"mapper\[0\]\.options\.n_jobs=0 is not valid"),
        ([{"clusterer": "dbscn"}], r"mapper\[0\]\.clusterer='dbscn' is not valid: unknown clusterer "
                                   r"\(did you mean 'dbscan'\?\)"),
        ([{"metric": "cosin"}], r"mapper\[0\]\.metric='cosin' is not valid \(did you mean 'cosine'\?\)"),
        ([{"n_intervals": 60}], r"mapper\[0\]\.n_intervals=60 is more than the number of points \(50\); "
                                r"allowed: 1..50: a graph has at least dataset.subset = 50 rows"),
        ([{"name": "x"}, {"name": "x"}], "mapper parameter set names must be unique"),
    ]:
        d = base()
        d["mapper"] = mapper
        with pytest.raises(AdvtopoError, match=message):
            StudyConfig.from_dict(d)
    d = base()
    d["mapper"] = {"n_intervals": 4}  # one [mapper] table is one set
    assert StudyConfig.from_dict(d).mapper[0].mapper.n_intervals == 4


def test_default_mapper_set_task_key_form_is_unchanged():
    """The study hashes MapperConfig.params() into its task keys: this form must not change, or
    every cached mapper result of existing runs would be recomputed."""
    from advtopo.study.config import MapperConfig

    expected = {"lens": "l2norm", "cover": "uniform", "n_intervals": 10, "overlap": 0.3, "clusterer": "dbscan",
                "eps": "auto", "min_samples": 5, "metric": "euclidean"}
    assert MapperConfig().params() == expected
    assert StudyConfig.from_dict(base()).mapper[0].params() == expected
    d = base()
    d["mapper"] = [{"n_intervals": 4, "overlap": 0, "eps": 2, "min_samples": 2}]
    p = StudyConfig.from_dict(d).mapper[0].params()
    assert p == {**expected, "n_intervals": 4, "overlap": 0.0, "eps": 2.0, "min_samples": 2}
    assert type(p["overlap"]) is float and type(p["eps"]) is float  # as the old config coerced them
    assert StudyConfig.from_dict(base()).to_dict()["mapper"] == [{"name": "default", **expected, "rows": "both",
                                                                 "options": {}}]
