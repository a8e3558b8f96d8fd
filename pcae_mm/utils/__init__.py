from .checkpoint import (CheckpointError, allow_mmengine_checkpoints, check_complete,
                         find_last_complete_checkpoint, list_checkpoints, safe_checkpoint_loader,
                         safe_load)

__all__ = [
    'CheckpointError', 'allow_mmengine_checkpoints', 'check_complete',
    'find_last_complete_checkpoint', 'list_checkpoints', 'safe_checkpoint_loader', 'safe_load'
]
