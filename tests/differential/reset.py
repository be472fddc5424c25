# Connection resets: closing a socket with unread data resets the connection;
# the peer's next recv fails with ECONNRESET, poll shows POLLERR|POLLHUP, and
# afterwards reads return EOF and writes EPIPE.
from lib import *

reset_transcript("unread data")
