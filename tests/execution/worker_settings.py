"""Settings for the Celery worker the integration tests start: the test settings plus test executors."""

from cwom_site.settings_test import *  # noqa: F403
from cwom_site.settings_test import CWOM_EXECUTION

CWOM_EXECUTION["executors"]["scripted"] = "tests.execution.scripted.ScriptedExecutor"
