from io import StringIO

from django.core.management import call_command

from approvals.demo import DEMO_PASSWORD, USERS


def test_demo_without_serving_prints_the_url_logins_and_token(db):
    out = StringIO()
    call_command("demo", "--no-serve", "--port", "8765", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8765/admin/" in text
    assert DEMO_PASSWORD in text
    for username in USERS:
        assert f"    {username} " in text
    assert "token=gk_" in text


def test_demo_run_again_says_the_token_was_shown_before(db):
    call_command("demo", "--no-serve", stdout=StringIO())
    out = StringIO()
    call_command("demo", "--no-serve", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/admin/" in text
    assert "token=" not in text
    assert "already present kept their passwords" in text


def test_the_seeded_links_point_at_the_demo_port(db):
    from approvals.models import GateCheck

    call_command("demo", "--no-serve", "--port", "8765", stdout=StringIO())
    answer = GateCheck.objects.exclude(response__approval=None).first().response
    assert answer["approval"]["url"].startswith("http://127.0.0.1:8765/approvals/")
