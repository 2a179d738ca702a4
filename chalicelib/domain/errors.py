"""Domain errors.

    DispatchError
    ├── DispatchNotFound      the dispatch does not exist (or belongs to another application)
    ├── DispatchExists        a create collided with an existing dispatch id
    ├── DispatchTooLarge      the dispatch does not fit in one stored item (also a ValueError)
    └── ConcurrentUpdate      the stored version moved on since it was read
"""
from __future__ import annotations


class DispatchError(Exception):
    """Base of every error the domain and service raise on purpose."""


class DispatchNotFound(DispatchError):
    pass


class DispatchExists(DispatchError):
    pass


class DispatchTooLarge(DispatchError, ValueError):
    pass


class ConcurrentUpdate(DispatchError):
    pass
