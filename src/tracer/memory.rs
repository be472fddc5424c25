//! Reading and writing a tracee's memory.
//!
//! Every access goes through `process_vm_readv`/`process_vm_writev`, one system call
//! per transfer whatever its size. An address the tracee could not access yields
//! `EFAULT`, exactly what the kernel would have returned to the tracee for the same
//! pointer, so handlers can pass the error straight back.

use std::io::{IoSlice, IoSliceMut};
use std::mem::{MaybeUninit, size_of};

use nix::errno::Errno;
use nix::sys::uio::{RemoteIoVec, process_vm_readv, process_vm_writev};
use nix::unistd::Pid;

use crate::syscall::ReadMemory;

/// The memory of one traced process (any of its threads' ids will do).
#[derive(Clone, Copy, Debug)]
pub struct TraceeMemory {
    pid: Pid,
}

/// A value that can be read from tracee memory byte for byte, as zerocopy's
/// `FromBytes`: every bit pattern of its size is a valid value, padding included
/// (whatever the tracee had there lands in it, and is never looked at).
///
/// # Safety
/// Implementors must be plain old data (`repr(C)` or a primitive, no references,
/// pointers only as plain addresses) valid for every bit pattern.
pub unsafe trait FromBytes: Copy {}

/// A value whose bytes can be viewed as a `&[u8]` and written to tracee memory,
/// as zerocopy's `IntoBytes`: it has no padding, whose bytes are uninitialised and
/// may not be read. A C struct with padding (`msghdr`, `mmsghdr`) is written
/// field by field instead ([`TraceeMemory::write_msghdr`], [`msghdr_bytes`]).
///
/// # Safety
/// Implementors must be [`FromBytes`] types without padding: their size is the sum
/// of their fields' sizes (the tests check each).
pub unsafe trait IntoBytes: FromBytes {}

/// Implements both byte views for types without padding.
macro_rules! plain_data {
    ($($ty:ty),* $(,)?) => {$(
        // SAFETY: integers, arrays of them, and C structs of integers and pointers
        // used as plain addresses are valid for every bit pattern.
        unsafe impl FromBytes for $ty {}
        // SAFETY: the type has no padding (checked by `plain_data_has_no_padding`).
        unsafe impl IntoBytes for $ty {}
    )*};
}

plain_data!(
    u8,
    u16,
    u32,
    i32,
    u64,
    [i32; 2],
    libc::iovec,
    libc::timespec,
    libc::timeval,
    libc::linger,
);

// SAFETY: a C struct of integers and pointers used as plain addresses: valid for
// every bit pattern. It has padding, so it is not `IntoBytes`.
unsafe impl FromBytes for libc::msghdr {}
// SAFETY: as above (a `msghdr` and an unsigned int, with padding).
unsafe impl FromBytes for libc::mmsghdr {}

impl TraceeMemory {
    /// The memory of process `pid`.
    pub fn new(pid: Pid) -> Self {
        Self { pid }
    }

    /// Copies `len` bytes from `addr`; a short or failed copy is `EFAULT`.
    pub fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; len];
        self.read_into(addr, &mut buf)?;
        Ok(buf)
    }

    /// The bytes from `addr` up to `len` that can be read, in order: all of
    /// them, or those before the first that cannot (none if the first cannot).
    pub fn read_prefix(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        if len == 0 {
            return buf;
        }
        let remote = [RemoteIoVec { base: addr as usize, len }];
        // The kernel copies up to the first byte it cannot read.
        let read = process_vm_readv(self.pid, &mut [IoSliceMut::new(&mut buf)], &remote);
        buf.truncate(read.unwrap_or(0));
        buf
    }

    /// Fills `buf` from `addr`; a short or failed copy is `EFAULT`.
    pub fn read_into(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        let remote = [RemoteIoVec { base: addr as usize, len }];
        match process_vm_readv(self.pid, &mut [IoSliceMut::new(buf)], &remote) {
            Ok(n) if n == len => Ok(()),
            Ok(_) | Err(Errno::EFAULT) => Err(Errno::EFAULT),
            Err(e) => Err(e),
        }
    }

    /// Reads one plain value at `addr`.
    pub fn read<T: FromBytes>(&self, addr: u64) -> Result<T, Errno> {
        let mut value = MaybeUninit::<T>::zeroed();
        // SAFETY: the slice covers exactly the storage of `value`, which lives until
        // the end of this function and is initialised (zeroed); `T: FromBytes` makes
        // any bytes written into it a valid `T`.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(value.as_mut_ptr().cast::<u8>(), size_of::<T>())
        };
        self.read_into(addr, bytes)?;
        // SAFETY: fully initialised above (zeroed, then overwritten), and
        // `T: FromBytes`.
        Ok(unsafe { value.assume_init() })
    }

    /// Copies `data` to `addr`; a short or failed copy is `EFAULT`.
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let remote = [RemoteIoVec { base: addr as usize, len: data.len() }];
        match process_vm_writev(self.pid, &[IoSlice::new(data)], &remote) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) | Err(Errno::EFAULT) => Err(Errno::EFAULT),
            Err(e) => Err(e),
        }
    }

    /// Writes several pieces, each to its own address, in one system call (all or
    /// nothing as far as the caller can tell: a short write is `EFAULT`).
    pub fn write_parts(&self, parts: &[(u64, &[u8])]) -> Result<(), Errno> {
        let parts: Vec<_> = parts.iter().filter(|(_, data)| !data.is_empty()).collect();
        let total: usize = parts.iter().map(|(_, data)| data.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let local: Vec<IoSlice> = parts.iter().map(|(_, data)| IoSlice::new(data)).collect();
        let remote: Vec<RemoteIoVec> = parts
            .iter()
            .map(|(addr, data)| RemoteIoVec { base: *addr as usize, len: data.len() })
            .collect();
        match process_vm_writev(self.pid, &local, &remote) {
            Ok(n) if n == total => Ok(()),
            Ok(_) | Err(Errno::EFAULT) => Err(Errno::EFAULT),
            Err(e) => Err(e),
        }
    }

    /// Writes one plain value to `addr`.
    pub fn write<T: IntoBytes>(&self, addr: u64, value: &T) -> Result<(), Errno> {
        // SAFETY: `value` is a live reference to `size_of::<T>()` bytes, all of them
        // initialised because `T: IntoBytes` has no padding.
        let bytes =
            unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) };
        self.write_bytes(addr, bytes)
    }

    /// Writes message header `header` to `addr` field by field, in one system call,
    /// leaving its padding as it was: a `msghdr` has padding, so it has no byte
    /// view.
    pub fn write_msghdr(&self, addr: u64, header: &libc::msghdr) -> Result<(), Errno> {
        let fields = msghdr_fields(header);
        let parts: Vec<(u64, &[u8])> =
            fields.iter().map(|(offset, field)| (addr + *offset as u64, &field[..])).collect();
        self.write_parts(&parts)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_c_string(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        while out.len() < max {
            // Never cross a page boundary in one read: the next page may be unmapped
            // even though the string ends before it.
            let at = addr + out.len() as u64;
            let to_page_end = 4096 - (at % 4096) as usize;
            let n = chunk.len().min(to_page_end).min(max - out.len());
            self.read_into(at, &mut chunk[..n])?;
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(out)
    }
}

impl ReadMemory for TraceeMemory {
    fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        TraceeMemory::read_bytes(self, addr, len)
    }
}

/// The fields of a `struct msghdr` as the kernel reads them, each with its offset:
/// everything but the padding.
fn msghdr_fields(header: &libc::msghdr) -> [(usize, Vec<u8>); 7] {
    use std::mem::offset_of;
    let address = |pointer: *mut libc::c_void| (pointer as u64).to_ne_bytes().to_vec();
    [
        (offset_of!(libc::msghdr, msg_name), address(header.msg_name)),
        (offset_of!(libc::msghdr, msg_namelen), header.msg_namelen.to_ne_bytes().to_vec()),
        (offset_of!(libc::msghdr, msg_iov), address(header.msg_iov.cast())),
        (offset_of!(libc::msghdr, msg_iovlen), header.msg_iovlen.to_ne_bytes().to_vec()),
        (offset_of!(libc::msghdr, msg_control), address(header.msg_control)),
        (offset_of!(libc::msghdr, msg_controllen), header.msg_controllen.to_ne_bytes().to_vec()),
        (offset_of!(libc::msghdr, msg_flags), header.msg_flags.to_ne_bytes().to_vec()),
    ]
}

/// A `struct msghdr` as the kernel reads it, field by field (its padding left
/// zero).
pub fn msghdr_bytes(header: &libc::msghdr) -> [u8; size_of::<libc::msghdr>()] {
    let mut bytes = [0u8; size_of::<libc::msghdr>()];
    for (offset, field) in msghdr_fields(header) {
        bytes[offset..offset + field.len()].copy_from_slice(&field);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_memory() -> TraceeMemory {
        TraceeMemory::new(nix::unistd::getpid())
    }

    #[test]
    fn reads_and_writes_own_memory() {
        let mem = own_memory();
        let source: u64 = 0x1122_3344_5566_7788;
        assert_eq!(mem.read::<u64>(&source as *const u64 as u64), Ok(source));
        let mut target = [0u8; 4];
        mem.write_bytes(target.as_mut_ptr() as u64, b"abcd").unwrap();
        assert_eq!(&target, b"abcd");
    }

    #[test]
    fn writes_parts_in_one_go() {
        let mem = own_memory();
        let (mut a, mut b) = ([0u8; 3], [0u8; 2]);
        let parts = [(a.as_mut_ptr() as u64, &b"abc"[..]), (b.as_mut_ptr() as u64, &b"de"[..])];
        mem.write_parts(&parts).unwrap();
        assert_eq!((&a, &b), (b"abc", b"de"));
        assert_eq!(mem.write_parts(&[(8, &b"x"[..])]), Err(Errno::EFAULT));
    }

    #[test]
    fn bad_pointer_is_efault() {
        let mem = own_memory();
        assert_eq!(mem.read::<u64>(8), Err(Errno::EFAULT));
        assert_eq!(mem.write_bytes(8, b"x"), Err(Errno::EFAULT));
        assert_eq!(mem.read_bytes(u64::MAX - 2, 16), Err(Errno::EFAULT));
    }

    #[test]
    fn empty_transfers_touch_nothing() {
        let mem = own_memory();
        assert_eq!(mem.read_bytes(0, 0), Ok(vec![]));
        assert_eq!(mem.write_bytes(0, b""), Ok(()));
    }

    #[test]
    fn a_message_header_is_laid_out_as_the_kernel_reads_it() {
        // SAFETY: msghdr is plain data; all zeroes is a valid value.
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        header.msg_name = 0x1122 as *mut libc::c_void;
        header.msg_namelen = 16;
        header.msg_iovlen = 3;
        header.msg_flags = 7;
        let bytes = msghdr_bytes(&header);
        let mem = own_memory();
        let copy: libc::msghdr = mem.read(bytes.as_ptr() as u64).unwrap();
        assert_eq!((copy.msg_name as u64, copy.msg_namelen), (0x1122, 16));
        assert_eq!((copy.msg_iovlen, copy.msg_flags), (3, 7));
        assert!(copy.msg_iov.is_null() && copy.msg_control.is_null());
        let mut written = [0xffu8; size_of::<libc::msghdr>()];
        mem.write_msghdr(written.as_mut_ptr() as u64, &header).unwrap();
        let mut expected = [0xffu8; size_of::<libc::msghdr>()];
        for (offset, field) in msghdr_fields(&header) {
            expected[offset..offset + field.len()].copy_from_slice(&field);
        }
        assert_eq!(written, expected, "the fields written, the padding left as it was");
        assert_eq!(written.iter().filter(|&&b| b == 0xff).count(), 8, "two gaps of 4 bytes");
    }

    #[test]
    fn plain_data_has_no_padding() {
        use libc::{c_int, c_long, c_void, size_t, suseconds_t, time_t};
        assert_eq!(size_of::<[i32; 2]>(), 2 * size_of::<i32>());
        assert_eq!(size_of::<libc::iovec>(), size_of::<*mut c_void>() + size_of::<size_t>());
        assert_eq!(size_of::<libc::timespec>(), size_of::<time_t>() + size_of::<c_long>());
        assert_eq!(size_of::<libc::timeval>(), size_of::<time_t>() + size_of::<suseconds_t>());
        assert_eq!(size_of::<libc::linger>(), 2 * size_of::<c_int>());
    }

    #[test]
    fn message_headers_have_padding_so_no_byte_view() {
        use libc::{c_int, c_uint, c_void, size_t, socklen_t};
        let pointer = size_of::<*mut c_void>();
        let msghdr_fields = 3 * pointer + size_of::<socklen_t>() + 2 * size_of::<size_t>();
        let msghdr_fields = msghdr_fields + size_of::<c_int>();
        assert!(size_of::<libc::msghdr>() > msghdr_fields);
        let mmsghdr_fields = size_of::<libc::msghdr>() + size_of::<c_uint>();
        assert!(size_of::<libc::mmsghdr>() > mmsghdr_fields);
    }

    #[test]
    fn reads_c_strings() {
        let mem = own_memory();
        let s = b"hello\0world";
        assert_eq!(mem.read_c_string(s.as_ptr() as u64, 100).unwrap(), b"hello");
        assert_eq!(mem.read_c_string(s.as_ptr() as u64, 3).unwrap(), b"hel");
    }
}
