"""Cross-validation helpers: blocked splits for sequences of correlated samples."""

from ._blocked import BlockedFrameSplit, block_ids, frame_blocks

__all__ = ["BlockedFrameSplit", "block_ids", "frame_blocks"]
