# close() with SO_LINGER {1, 0} resets the connection, as closing with unread
# data does (reset.py): the peer's next recv fails with ECONNRESET.
from lib import *

reset_transcript("SO_LINGER 0")
