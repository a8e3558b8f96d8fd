"""The speed targets of issue 6, checked against benchmark rows."""
import operator
import re
from typing import Dict, List, Optional

# (description, config-name regex, row key, comparison, threshold)
TRAIN_TARGETS = (
    ('PCAE train step time <= 0.60 x MAE', r'^pcae_vit-base-p16_', 'time_ratio', 'le', 0.60),
    ('PR-MIM (50% thrown) train FLOPs <= 0.72 x MAE', r'^pr-mim_vit-base-p16-throw50_',
     'flops_ratio', 'le', 0.72),
    ('PR-MIM (50% thrown) peak memory <= 0.64 x MAE', r'^pr-mim_vit-base-p16-throw50_',
     'memory_ratio', 'le', 0.64),
    ('PR-MIM (50% thrown) step memory (peak above weights + optimizer state) <= 0.64 x MAE',
     r'^pr-mim_vit-base-p16-throw50_', 'step_memory_ratio', 'le', 0.64),
    ('SdAE train step time <= 1.3 x MAE', r'^sdae_vit-base-p16_', 'time_ratio', 'le', 1.30),
)
OPS = {'le': operator.le, 'ge': operator.ge}


def _check(value: Optional[float], op: str, threshold: float) -> Optional[bool]:
    return None if value is None else bool(OPS[op](value, threshold))


def check_targets(train_rows: List[Dict], ptr_rows: List[Dict]) -> List[Dict]:
    """Evaluate every target that the measured rows allow.

    Returns:
        list[dict]: ``target``, ``config``, ``value`` and ``met`` (True / False / None when the
        config was not benchmarked).
    """
    results = []
    for desc, pattern, key, op, threshold in TRAIN_TARGETS:
        row = next((r for r in train_rows if re.search(pattern, r['name'])), None)
        value = None if row is None else row.get(key)
        results.append(dict(target=desc, config=row and row['name'], value=value,
                            met=_check(value, op, threshold)))
    drop4 = next((r for r in ptr_rows if abs(r['drop_ratio'] - 0.4) < 1e-6), None)
    for desc, key, op, threshold in (
            ('PTR drop 0.4 inference throughput >= 1.8 x drop 0', 'infer_speedup', 'ge', 1.8),
            ('PTR drop 0.4 fine-tune throughput >= 1.8 x drop 0', 'train_speedup', 'ge', 1.8)):
        value = None if drop4 is None else drop4.get(key)
        if value is not None or key == 'infer_speedup':
            results.append(dict(target=desc, config=drop4 and drop4['name'], value=value,
                                met=_check(value, op, threshold)))
    for row in ptr_rows:
        if row.get('gmacs_error') is not None:
            results.append(dict(
                target=f"PTR drop {row['drop_ratio']:.1f} MACs within 2% of "
                f"{row['paper_gmacs']} G (|error|)",
                config=row['name'], value=abs(row['gmacs_error']),
                met=abs(row['gmacs_error']) <= 0.02))
    return results
