//! A program's `AF_NETLINK` socket on a stack: its carrier and its calls.
