"""Loaded by Python at start-up when this folder is on PYTHONPATH; scripts/bench.sh runs
getmail6 so. It fixes a race in getmail6 (seen with 6.18.11, Debian 12): for every message it
delivers, getmail forks a child and only then installs a SIGCHLD handler and waits on a
condition that the handler notifies, so a child that exits before the handler is in place, or
before the wait starts, goes unnoticed and getmail stops after its timeout with "waiting child
pid N timed out". On a busy machine that happens every few hundred messages. Here the parent
waits for its child with a plain blocking waitpid() instead: the same child, the same exit
status checks, no signal handler. Nothing else of getmail changes (retrieval, parsing,
delivery, fsyncs), so its timing stays its own.
"""
import os

try:
    from getmailcore import baseclasses
    from getmailcore.exceptions import getmailOperationError
except ImportError:  # not getmail: nothing to fix
    baseclasses = None


def _prepare_child(self):
    pass


def _wait_for_child(self, childpid):
    pid, status = os.waitpid(childpid, 0)
    if os.WIFSIGNALED(status):
        raise getmailOperationError("child pid %d killed by signal %d" % (pid, os.WTERMSIG(status)))
    if not os.WIFEXITED(status):
        raise getmailOperationError("child pid %d failed to exit" % pid)
    return os.WEXITSTATUS(status)


if baseclasses is not None:
    baseclasses.ForkingBase._prepare_child = _prepare_child
    baseclasses.ForkingBase._wait_for_child = _wait_for_child
