//! Socket addresses in a tracee's memory: an address a call passes in, read with
//! the kernel's checks, and one given back through a value-result length as the
//! kernel does. The layout itself is [`crate::syscall::sockaddr`]'s.

use nix::errno::Errno;

use crate::syscall::UserPtr;
use crate::syscall::sockaddr::MAX_LEN;
use crate::tracer::TraceeMemory;

pub use crate::syscall::sockaddr::encode;

/// Returns an address through a value-result length as the kernel does
/// (`move_addr_to_user`): read the caller's buffer length, copy at most that many
/// bytes, and store the full length. A negative length is `EINVAL`; an unreadable or
/// unwritable pointer is `EFAULT`.
pub fn write_out(
    memory: &TraceeMemory,
    addr: UserPtr,
    addrlen: UserPtr,
    bytes: &[u8],
) -> Result<(), Errno> {
    let room = memory.read::<i32>(addrlen.0)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = bytes.len().min(room as usize);
    let len = (bytes.len() as u32).to_ne_bytes();
    memory.write_parts(&[(addr.0, &bytes[..n]), (addrlen.0, &len)])
}

/// Reads the address a call passes in, with the kernel's checks: a length over
/// `sizeof(struct sockaddr_storage)` or negative is `EINVAL`, a bad pointer `EFAULT`.
pub fn read_in(memory: &TraceeMemory, addr: UserPtr, addrlen: u32) -> Result<Vec<u8>, Errno> {
    if !(0..=MAX_LEN as i32).contains(&(addrlen as i32)) {
        return Err(Errno::EINVAL);
    }
    memory.read_bytes(addr.0, addrlen as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_out_truncates_and_reports_the_full_length() {
        let memory = TraceeMemory::new(nix::unistd::getpid());
        let mut buf = [0xaau8; 8];
        let mut len: i32 = 8;
        let bytes = encode("1.2.3.4:5".parse().unwrap(), libc::AF_INET);
        let ptr = |p: *mut u8| UserPtr(p as u64);
        write_out(&memory, ptr(buf.as_mut_ptr()), ptr((&raw mut len).cast()), &bytes).unwrap();
        assert_eq!(len, 16);
        assert_eq!(&buf[..], &bytes[..8]);
        len = -1;
        let err = write_out(&memory, ptr(buf.as_mut_ptr()), ptr((&raw mut len).cast()), &bytes);
        assert_eq!(err, Err(Errno::EINVAL));
        assert_eq!(write_out(&memory, UserPtr(8), UserPtr(16), &bytes), Err(Errno::EFAULT));
    }
}
