"""The bootstrap installs again when either the project's or the client's pyproject.toml changes."""

from gatekeeper import bootstrap


def test_a_change_to_the_client_distribution_changes_the_install_stamp(tmp_path, monkeypatch):
    (tmp_path / "client").mkdir()
    project, client = tmp_path / "pyproject.toml", tmp_path / "client" / "pyproject.toml"
    project.write_text('[project]\nname = "gatekeeper"\n')
    client.write_text('[project]\nname = "gatekeeper-client"\n')
    monkeypatch.setattr(bootstrap, "BASE_DIR", str(tmp_path))
    monkeypatch.setattr(bootstrap, "CLIENT_DIR", str(tmp_path / "client"))
    first = bootstrap._requirements_stamp()
    client.write_text('[project]\nname = "gatekeeper-client"\ndependencies = ["x"]\n')
    second = bootstrap._requirements_stamp()
    project.write_text('[project]\nname = "gatekeeper"\nversion = "2"\n')
    assert len({first, second, bootstrap._requirements_stamp()}) == 3
