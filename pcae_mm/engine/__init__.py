from . import fsdp  # noqa: F401 (TeacherReplicatedFSDP, vit_block_wrap_policy)
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
