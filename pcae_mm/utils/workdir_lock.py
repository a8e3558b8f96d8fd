"""A work dir is owned by one run (issue 25): a lock taken before anything is written.

Two ``tools/train.py`` runs into one ``--work-dir`` would overwrite each other's checkpoints and
write into one log and one ``scalars.json``. The first run takes ``<work_dir>/.pcae_mm.lock``:

* an exclusive ``fcntl.flock`` on an open file descriptor, held for the whole run. The kernel
  drops it when the process ends, however it ends (exception, ``KeyboardInterrupt``, SIGKILL,
  OOM kill), so a crashed run never leaves a lock that blocks the next one;
* the file holds the owner's pid, host, start time and command line, so a refused run can say
  who owns the work dir.

A second run finds the lock held and is refused (:class:`WorkDirLockedError`) with the owner and
the choices: wait for it, use another ``--work-dir``, or ``--resume`` once it has finished.

A lock file that still names an owner while nobody holds the lock was left by a run that ended
without releasing it (killed): on the same host (its pid is gone) it is taken over with a note.
Written on another host, this host cannot tell whether that run still lives (on file systems
where ``flock`` is local to each host, a live run there would not block us): refused unless the
user passes ``--take-over-lock``.

File-system notes: ``flock`` is enforced between hosts on NFSv4 and on Linux NFSv3 clients
(emulated with POSIX byte-range locks, through the server's lock manager); some network file
systems (e.g. Lustre mounted with ``localflock``, some FUSE file systems) only lock within one
host: there the owner record (host + pid) is the only cross-host protection, which is why a lock
written by another host is never taken over silently. Where ``flock`` is refused altogether
(``ENOLCK``, ``EOPNOTSUPP``), the owner record alone decides (a live pid on this host blocks).
"""
import errno
import fcntl
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Optional

LOCK_NAME = '.pcae_mm.lock'


class WorkDirLockedError(RuntimeError):
    """The work dir is owned by another run (or cannot be locked)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def describe_owner(owner: dict) -> str:
    """``pid 123 on host h, started 2026-01-02 10:00:00 (42 s ago): python tools/train.py ...``"""
    start = owner.get('start')
    when = ''
    if isinstance(start, (int, float)):
        when = (f', started {time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))} '
                f'({max(int(time.time() - start), 0)} s ago)')
    cmd = owner.get('command')
    return (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}{when}"
            + (f': {cmd}' if cmd else ''))


class WorkDirLock:
    """Exclusive ownership of a work dir for one run (use as a context manager).

    Args:
        work_dir (str): The run's work dir; created (with its parents) when missing.
        take_over (bool): Take over a lock left on another host by a run this host cannot see
            (``--take-over-lock``). Defaults to False.
        command (str, optional): The owner's command line, recorded in the lock file.
            Defaults to this process's ``sys.argv``.
    """

    def __init__(self, work_dir: str, take_over: bool = False,
                 command: Optional[str] = None) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.take_over = take_over
        self.command = command if command is not None else ' '.join(
            [osp.basename(sys.executable)] + sys.argv)
        self.fd: Optional[int] = None
        self.note: Optional[str] = None  # set when a stale lock was taken over

    # ------------------------------------------------------------------ helpers
    def _owner_record(self) -> dict:
        return dict(pid=os.getpid(), host=socket.gethostname(), start=time.time(),
                    command=self.command)

    @staticmethod
    def _read(fd: int) -> Optional[dict]:
        os.lseek(fd, 0, os.SEEK_SET)
        data = b''
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
        if not data.strip():
            return None
        try:
            owner = json.loads(data.decode('utf-8', 'replace'))
        except ValueError:
            return {'pid': '?', 'host': '?', 'command': None}
        return owner if isinstance(owner, dict) else None

    def _refuse(self, owner: Optional[dict], why: str) -> None:
        raise WorkDirLockedError(
            f'work dir {self.work_dir!r} {why}'
            + (f' ({describe_owner(owner)})' if owner else '') + '. Two runs in one work dir '
            'would overwrite each other\'s checkpoints and logs. Wait for it to finish, start '
            'this run in another --work-dir, or, once it has finished, continue it with '
            f'--resume. (Lock file: {self.path})')

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> 'WorkDirLock':
        if osp.exists(self.work_dir) and not osp.isdir(self.work_dir):
            raise NotADirectoryError(
                f'--work-dir {self.work_dir!r} is a file, not a directory. Name a directory '
                '(it is created when missing), or move the file away.')
        try:
            os.makedirs(self.work_dir, exist_ok=True)
        except OSError as e:
            kind = NotADirectoryError if e.errno == errno.ENOTDIR else PermissionError
            raise kind(
                f'cannot create the work dir {self.work_dir!r}: {e.strerror}'
                + (f' ({e.filename!r})' if e.filename and e.filename != self.work_dir else '')
                + '. Choose a --work-dir you can write to.') from None
        if not os.access(self.work_dir, os.W_OK | os.X_OK):
            raise PermissionError(
                f'work dir {self.work_dir!r} is not writable by this user: checkpoints and '
                'logs could not be saved. Fix its permissions or choose another --work-dir.')
        for _ in range(20):  # retried when the file was replaced between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = self._flock(fd)
            except BaseException:
                os.close(fd)
                raise
            if locked is False:
                owner = self._read(fd)
                os.close(fd)
                self._refuse(owner, 'is in use by another run')
            try:  # the file we locked must still be the one at the path (a releasing owner
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino  # unlinks it)
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:
                self._check_previous(fd, flock_works=locked is True)
            except BaseException:
                os.close(fd)
                raise
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(self._owner_record()).encode())
            os.fsync(fd)
            self.fd = fd
            return self
        raise WorkDirLockedError(f'could not lock {self.path!r}: it keeps being replaced')

    @staticmethod
    def _flock(fd: int) -> Optional[bool]:
        """True: locked; False: held by another process; None: flock unsupported here."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return None
            raise

    def _check_previous(self, fd: int, flock_works: bool) -> None:
        """The lock is ours; decide about an owner record left in the file."""
        owner = self._read(fd)
        if not owner:
            return
        host, pid = owner.get('host'), owner.get('pid')
        if host == socket.gethostname():
            if isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid) \
                    and not flock_works:
                self._refuse(owner, 'is in use by another run')  # no flock: the record decides
            self.note = (f'took over the lock of {self.work_dir!r}: its owner '
                         f'({describe_owner(owner)}) ended without releasing it (its process '
                         'is gone; killed or crashed). Its checkpoints are kept.')
            return
        if not self.take_over:
            self._refuse(owner, 'was locked by a run on another host that did not release it; '
                         'this host cannot tell whether that run is still going. If it is not '
                         '(it was killed, or its host went down), pass --take-over-lock')
        self.note = (f'--take-over-lock: took over the lock of {self.work_dir!r} left by '
                     f'{describe_owner(owner)}')

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.unlink(self.path)  # while still locked: a waiting run then locks a new file
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def is_rank_zero(launcher: str = 'none') -> bool:
    """Whether this process is the global rank 0 of its launch (read from the launcher's
    environment, before any process group exists)."""
    for var in ('RANK', 'SLURM_PROCID' if launcher == 'slurm' else None,
                'OMPI_COMM_WORLD_RANK' if launcher == 'mpi' else None):
        if var and os.environ.get(var, '').strip().isdigit():
            return int(os.environ[var]) == 0
    return True
