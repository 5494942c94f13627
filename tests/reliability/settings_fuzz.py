"""Settings of the site under API fuzzing: the production settings without the API throttles
(as the test settings), so that generated requests reach the views instead of stopping at
429 after the tenth credential reset or upload of the hour."""

from pbts_site.settings import *  # noqa: F403

REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"upload": None, "credentials": None, "reports": None},
}
