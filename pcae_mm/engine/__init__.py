from . import fsdp, torch_compile  # noqa: F401 (TeacherReplicatedFSDP, ...; CompileForwardHook)
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
