"""The browser tests have a Chromium to drive: without it they skip, or fail under CI."""


def test_the_browser_tests_have_a_chromium(chromium):
    assert chromium.is_connected() and chromium.version
