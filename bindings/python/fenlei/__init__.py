"""Fenlei for Python: the generated UniFFI bindings of the Fenlei core, as one package.

`fenlei_ffi` holds the store, the errors and the callbacks; `fenlei_core` the records and enums
declared in the core. Both are re-exported here: `from fenlei import FenleiStore, ItemAnswer`.
"""

from .fenlei_core import *  # noqa: F401,F403
from .fenlei_ffi import *  # noqa: F401,F403
