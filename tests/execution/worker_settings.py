"""Settings for the Celery worker the integration tests start: the settings from the environment the
test prepared (the test settings' pinned values plus the test's own), and the test executors."""

from cwom_site.settings import *  # noqa: F403
from cwom_site.settings import CWOM_EXECUTION

CWOM_EXECUTION["executors"]["scripted"] = "tests.execution.scripted.ScriptedExecutor"
