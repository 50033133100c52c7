from pathlib import Path

import pytest

from my_llm import ConfigError, Settings
from my_llm.config import EMULATOR_DEFAULT_PROJECT


def test_paths_and_services_come_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "MESSAGE_HISTORY": str(tmp_path / "logs"),
            "CHROMA_DB_PATH": str(tmp_path / "db"),
            "GOOGLE_CLOUD_PROJECT": "acme",
            "OPENAI_API_KEY": "sk-x",
            "MY_LLM_MODEL": "openai:gpt-4o-mini",
            "MY_LLM_FSYNC": "ALWAYS",
        }
    )
    assert settings.message_history == tmp_path / "logs"
    assert settings.chroma_db_path == tmp_path / "db"
    assert settings.google_cloud_project == "acme"
    assert settings.openai_api_key == "sk-x"
    assert settings.model == "openai:gpt-4o-mini"
    assert settings.fsync == "always"


def test_defaults_live_under_the_user_data_folder_and_mean_disk_only(tmp_path):
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "  ", "CLOUDSDK_CONFIG": str(tmp_path)})
    assert "my_llm" in settings.message_history.parts
    assert settings.chroma_db_path.parent == settings.message_history.parent
    assert settings.google_cloud_project is None  # blank counts as unset
    assert settings.model is None and settings.fsync == "interval"


def test_an_emulator_host_alone_gets_a_local_project():
    assert (
        Settings.from_env({"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}).google_cloud_project == EMULATOR_DEFAULT_PROJECT
    )


def test_home_is_expanded():
    assert Settings.from_env({"MESSAGE_HISTORY": "~/x"}).message_history == Path.home() / "x"


def test_a_bad_fsync_policy_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="always, interval, never"):
        Settings.from_env({"MY_LLM_FSYNC": "sometimes"})


def _gcloud(tmp_path, config=None, adc=None, active=None):
    folder = tmp_path / "gcloud"
    (folder / "configurations").mkdir(parents=True)
    if active:
        (folder / "active_config").write_text(active)
    if config:
        (folder / "configurations" / f"config_{active or 'default'}").write_text(config)
    if adc is not None:
        (folder / "application_default_credentials.json").write_text(adc)
    return {"CLOUDSDK_CONFIG": str(folder)}


def test_the_project_falls_back_to_the_gcloud_active_configuration(tmp_path):
    env = _gcloud(tmp_path, config="[core]\nproject = from-gcloud\naccount = me@example.com\n", active="work")
    assert Settings.from_env(env).google_cloud_project == "from-gcloud"
    assert Settings.from_env(env | {"GOOGLE_CLOUD_PROJECT": "explicit"}).google_cloud_project == "explicit"


def test_then_to_the_application_default_quota_project(tmp_path):
    env = _gcloud(tmp_path, config="[core]\naccount = me@example.com\n", adc='{"quota_project_id": "from-adc"}')
    assert Settings.from_env(env).google_cloud_project == "from-adc"


@pytest.mark.parametrize("adc", ["not json", "[]", '{"type": "authorized_user"}'])
def test_unreadable_gcloud_files_mean_no_project(tmp_path, adc):
    env = _gcloud(tmp_path, config="this is [not an ini", adc=adc)
    assert Settings.from_env(env).google_cloud_project is None
