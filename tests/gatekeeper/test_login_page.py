def test_the_login_page_renders_with_csrf(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


def test_a_reviewer_logs_in_and_a_wrong_password_is_a_form_error(client, alice):
    wrong = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200 and b'role="alert"' in wrong.content
    right = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert right.status_code == 302
