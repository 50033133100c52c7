import pytest

from my_llm import InvalidNamespaceError, namespace_from_name, topic_id_for, validate_namespace


@pytest.mark.parametrize("good", ["debugger", "a", "team-notes_2.0", "x" * 200])
def test_valid_namespaces_pass_unchanged(good):
    assert validate_namespace(good) == good


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "empty"),
        ("../x", "'/'"),
        ("a/b", "'/'"),
        ("a\\b", "use only letters"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        (".", "'..' or is '.'"),
        ("x" * 201, "201 characters"),
        ("naïve", "'ï'"),
        (None, "empty"),
    ],
)
def test_bad_namespaces_are_refused_with_the_reason(bad, says):
    with pytest.raises(InvalidNamespaceError) as raised:
        validate_namespace(bad)
    assert says in str(raised.value)


def test_names_are_cleaned_into_namespaces():
    assert namespace_from_name("read_repo-my repo/..x") == "read_repo-my-repo-.x"
    assert namespace_from_name("read_repo-" + "y" * 300) == ("read_repo-" + "y" * 300)[:200]
    with pytest.raises(InvalidNamespaceError):
        namespace_from_name("///")


def test_topics_start_with_a_letter_whatever_the_namespace():
    assert topic_id_for("2024") == "my-llm-2024"
    with pytest.raises(InvalidNamespaceError):
        topic_id_for("../x")
