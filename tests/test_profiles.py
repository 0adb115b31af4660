"""ra2.profiles: the profile names and each stage's settings."""

import pytest

from ra2 import Ra2Error


def test_profiles_and_overrides():
    import dataclasses

    from ra2.profiles import regressor_profile

    full, cpu_recipe = regressor_profile("full"), regressor_profile("cpu")
    assert full.n_folds == 5 and full.tta == cpu_recipe.tta == "auto"
    assert full.sizes() == {"foot_erosion": 64, "hand_erosion": 64, "narrowing": 64}
    for d, t in full.training.items():  # the cpu recipe (loss, schedule, sampling, prior) at GPU sizes
        c = cpu_recipe.training[d]
        same = dataclasses.replace(t, epochs=c.epochs, patience=c.patience, steps_per_epoch=c.steps_per_epoch,
                                   learning_rate=c.learning_rate, val_every=c.val_every)
        assert same == c, d
        assert t.batch_size == 64 and t.loss == "log2_mse" and t.lr_schedule == "cosine"
        # full keeps 50 steps of 64 at 1e-3 validated every epoch (the GPU estimate's recipe); cpu takes 25 steps
        # of 64 at 1e-3 x sqrt(2), validated every second epoch (the faster CPU recipe)
        assert (t.steps_per_epoch, t.learning_rate, t.val_every) == (50, 1e-3, 1)
        assert (c.batch_size, c.steps_per_epoch, c.val_every) == (64, 25, 2) and abs(c.learning_rate - 1.414e-3) < 1e-6
    assert {d: t.epochs for d, t in full.training.items()} == {"foot_erosion": 60, "hand_erosion": 160,
                                                              "narrowing": 60}
    net = full.networks["narrowing"]
    assert (net.growth_rate, net.blocks, net.stem_filters) == (24, (6, 12, 12), 48)
    assert net.replace(input_size=48, growth_rate=12, blocks=(4, 8, 6), stem_filters=24) == \
        cpu_recipe.networks["narrowing"]
    cpu = regressor_profile("cpu", sampling="weights", epochs=3, patience=1)
    assert all(t.sampling == "weights" and t.epochs == 3 and t.patience == 1 for t in cpu.training.values())
    assert regressor_profile("cpu").training["narrowing"].epochs == 40  # overrides never leak into the recipe
    with pytest.raises(Ra2Error):
        regressor_profile("huge")
    with pytest.raises(Ra2Error):
        regressor_profile("cpu", sampling="random")


def test_every_stage_table_covers_exactly_the_profile_names():
    from ra2 import profiles

    assert profiles.PROFILES == ("smoke", "demo", "cpu", "full")
    for table in (profiles.DESCRIPTIONS, profiles.DETECTOR_INPUT_SIDES, profiles.DETECTOR_RECIPES,
                  profiles.DETECTOR_NETWORKS, profiles._REGRESSOR_PROFILES):
        assert tuple(table) == profiles.PROFILES
    assert set(profiles.DEFAULTS.values()) <= set(profiles.PROFILES)
    for name in profiles.PROFILES:
        assert profiles.regressor_profile(name).name == name
        side, recipe, network = profiles.detector_settings(name, "film")
        assert side % 64 == 0 and recipe.steps >= 1 and "BACKBONE" in network
    # the demo trains its regressors briefly but uses the cpu detectors (the shipped ones)
    assert profiles.detector_settings("demo", "carpus") == profiles.detector_settings("cpu", "carpus")
    assert profiles.regressor_profile("demo").n_folds == 2


def test_unknown_profile_is_one_clear_error_and_help_names_the_default(capsys):
    from ra2.cli import main
    from ra2.profiles import check_profile, help_text

    with pytest.raises(Ra2Error, match="unknown profile 'gpu'; expected one of smoke, demo, cpu, full"):
        check_profile("gpu")
    assert help_text("train").endswith("(default: cpu)") and "demo:" in help_text("demo")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["train", "--train", "x", "--models", "y", "--profile", "gpu"])
    # argparse's usage error (exit 2) naming the option, the bad value and the choices, not any other exit
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ra2 train: error: argument --profile: invalid choice: 'gpu' (choose from 'smoke', 'demo', 'cpu', 'full')")


def test_detector_config_follows_the_profile_tables():
    from ra2.detection.specs import detector_config
    from ra2.profiles import ANCHOR_FRACTIONS, DETECTOR_INPUT_SIDES

    for profile in ("smoke", "cpu", "full"):
        hands = detector_config("hands", profile)
        wrist = detector_config("wrist_erosion", profile)
        assert hands.IMAGE_MAX_DIM == DETECTOR_INPUT_SIDES[profile]["film"]
        assert wrist.IMAGE_MAX_DIM == DETECTOR_INPUT_SIDES[profile]["carpus"]
        side = hands.IMAGE_MAX_DIM
        assert tuple(hands.RPN_ANCHOR_SCALES) == tuple(max(2, round(side * f)) for f in ANCHOR_FRACTIONS["film"])
        assert hands.NORM == "group" and hands.NUM_CLASSES == 12 and wrist.NUM_CLASSES == 7
    assert detector_config("hands", "cpu", NORM="batch").NORM == "batch"  # experiments override


def test_a_profile_is_resolved_once_into_one_settings_object(monkeypatch):
    from ra2 import profiles
    from ra2.detection.specs import detector_config, get_spec, recipe

    resolved = profiles.settings("smoke")
    assert profiles.settings(resolved) is resolved and resolved.name == "smoke"
    assert resolved.detectors["film"] == profiles.DetectorSettings(*profiles.detector_settings("smoke", "film"))
    assert resolved.regressors == profiles.regressor_profile("smoke")
    calls = []
    monkeypatch.setattr(profiles, "check_profile", lambda name: calls.append(name) or name)
    # given the resolved settings, the detector stages never resolve the name again
    assert detector_config("hands", resolved).to_dict() == detector_config("hands", "smoke").to_dict()
    calls.clear()
    detector_config("wrist_erosion", resolved), recipe("feet", resolved), get_spec("hands").size(resolved)
    assert calls == []
