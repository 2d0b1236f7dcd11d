"""The session journal: every event of a run in one SQLite file, and the ways to read it back."""
from .recorder import Recording, new_session_path, record_session
from .writer import JournalWriter

__all__ = ["JournalWriter", "Recording", "new_session_path", "record_session"]
