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


def test_defaults_live_under_the_user_data_folder_and_mean_disk_only():
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "  "})
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
