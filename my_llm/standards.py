"""The seed's import path for ``request_llm``: ``import my_llm.standards as my_llm; my_llm.request_llm(...)``.

The function lives in :mod:`my_llm.memory`; this module only keeps the seed's scripts working.
"""

from my_llm.memory import history_that_fits, request_llm
from my_llm.models import stamp_reply

__all__ = ["history_that_fits", "request_llm", "stamp_reply"]
