//! `SIOCSARP`, `SIOCDARP`, `SIOCGARP` (`arp_ioctl`, on `AF_INET` sockets): the
//! stack's neighbour table through a `struct arpreq`, as `arp -s`, `arp -d` and
//! `arp -a HOST` use it.
//!
//! An entry set with `ATF_PERM` is permanent (`NUD_PERMANENT`), one without it
//! stale; `ATF_COM` says the hardware address is given (or known, when read).
//! Proxy entries (`ATF_PUBL`) are not kept: setting one is `EOPNOTSUPP`.

use std::net::IpAddr;

use nix::errno::Errno;

use super::{IFNAMSIZ, c_string, hardware_type, name_bytes, sockaddr_address, sockaddr_family};
use crate::modules::vunet::inside::change::NUD_PERMANENT;
use crate::modules::vunet::inside::change::{Change, Event, Mode};
use crate::modules::vunet::inside::{Inside, LinkView, NeighbourView};
use crate::tracer::TraceeMemory;

/// `sizeof(struct arpreq)`.
const LEN: usize = 68;
/// Where the fields of a `struct arpreq` are.
const PROTOCOL_ADDRESS: usize = 0;
const HARDWARE_ADDRESS: usize = 16;
const FLAGS: usize = 32;
const NETMASK: usize = 36;
const DEVICE: usize = 52;

/// `ATF_*` flags.
const ATF_COM: i32 = 0x02;
const ATF_PERM: i32 = 0x04;
const ATF_PUBL: i32 = 0x08;

/// `NUD_VALID`: the states in which an entry has a hardware address.
const NUD_VALID: u16 = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;

/// A `struct arpreq`, its family and flags checked as `arp_ioctl` checks them.
pub(super) struct Request {
    bytes: [u8; LEN],
}

impl Request {
    /// Reads the `struct arpreq` at `at`.
    pub(super) fn read(memory: &TraceeMemory, at: u64) -> Result<Self, Errno> {
        let bytes = memory.read_bytes(at, LEN)?;
        Self::parse(bytes.as_slice().try_into().expect("read whole"))
    }

    /// `bytes` as a request: `EPFNOSUPPORT` for another protocol than IPv4,
    /// `EINVAL` for a netmask without `ATF_PUBL`. Without `ATF_NETMASK`, the
    /// netmask is all ones.
    fn parse(bytes: &[u8; LEN]) -> Result<Self, Errno> {
        let mut request = Request { bytes: *bytes };
        if sockaddr_family(&bytes[PROTOCOL_ADDRESS..]) != libc::AF_INET as u16 {
            return Err(Errno::EPFNOSUPPORT);
        }
        let flags = request.flags();
        if flags & ATF_PUBL == 0 && flags & (libc::ATF_NETMASK | libc::ATF_DONTPUB) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & libc::ATF_NETMASK == 0 {
            request.bytes[NETMASK + 4..NETMASK + 8].fill(0xff);
        }
        Ok(request)
    }

    fn flags(&self) -> i32 {
        i32::from_ne_bytes(self.bytes[FLAGS..FLAGS + 4].try_into().expect("4 bytes"))
    }

    fn ip(&self) -> IpAddr {
        IpAddr::V4(sockaddr_address(&self.bytes[PROTOCOL_ADDRESS..]))
    }

    fn hardware_family(&self) -> u16 {
        sockaddr_family(&self.bytes[HARDWARE_ADDRESS..])
    }

    /// The device `arp_dev` names (`arp_req_dev_by_name`), whose type a
    /// hardware address without a family takes: `ENODEV`, or `EINVAL` if a
    /// given address is of another type.
    fn named_device<'a>(&mut self, inside: &'a Inside) -> Result<&'a LinkView, Errno> {
        let name = c_string(&self.bytes[DEVICE..DEVICE + IFNAMSIZ - 1]);
        let link = inside.links.iter().find(|l| l.name.as_bytes() == name).ok_or(Errno::ENODEV)?;
        if self.hardware_family() == 0 {
            let family = hardware_type(link).to_ne_bytes();
            self.bytes[HARDWARE_ADDRESS..HARDWARE_ADDRESS + 2].copy_from_slice(&family);
        }
        if self.flags() & ATF_COM != 0 && self.hardware_family() != hardware_type(link) {
            return Err(Errno::EINVAL);
        }
        Ok(link)
    }

    /// The device of the entry (`arp_req_dev`): the one named, else none for a
    /// proxy entry, else the one its address is on-link through
    /// (`ENETUNREACH` if none).
    fn device<'a>(&mut self, inside: &'a Inside) -> Result<Option<&'a LinkView>, Errno> {
        if self.bytes[DEVICE] != 0 {
            return self.named_device(inside).map(Some);
        }
        if self.flags() & ATF_PUBL != 0 {
            return Ok(None);
        }
        let index = inside.connected_link(self.ip()).ok_or(Errno::ENETUNREACH)?;
        Ok(inside.links.iter().find(|l| l.index == index))
    }

    /// `arp_req_set`: a permanent entry with `ATF_PERM`, else a stale one; an
    /// entry without a hardware address takes the one already known, if any.
    pub(super) fn set(mut self, inside: &Inside) -> Result<Vec<Change>, Errno> {
        let link = self.device(inside)?;
        let Some(link) = link.filter(|_| self.flags() & ATF_PUBL == 0) else {
            return Err(Errno::EOPNOTSUPP);
        };
        if self.hardware_family() != hardware_type(link) {
            return Err(Errno::EINVAL);
        }
        let (ip, flags) = (self.ip(), self.flags());
        let state = if flags & ATF_PERM != 0 { NUD_PERMANENT } else { libc::NUD_STALE };
        let given = flags & (ATF_PERM | ATF_COM) != 0;
        let mac = match given {
            true => {
                Some(self.bytes[HARDWARE_ADDRESS + 2..HARDWARE_ADDRESS + 8].try_into().expect("6"))
            }
            false => known(inside, link.index, ip).and_then(|entry| entry.mac),
        };
        let mac = Some(mac.ok_or(Errno::EINVAL)?);
        let neighbour = NeighbourView { index: link.index, ip, mac, state, router: false };
        let mode = Mode { create: true, replace: true, ..Mode::default() };
        Ok(vec![Change::AddNeighbour { neighbour, mode }])
    }

    /// `arp_req_delete`: the entry goes (`ENOENT` from the change is the
    /// caller's `ENXIO`). There are no proxy entries to delete.
    pub(super) fn delete(mut self, inside: &Inside) -> Result<Vec<Change>, Errno> {
        let link = self.device(inside)?;
        match link {
            Some(link) if self.flags() & ATF_PUBL == 0 => {
                Ok(vec![Change::DeleteNeighbour { index: link.index, ip: self.ip() }])
            }
            _ => match self.bytes[NETMASK + 4..NETMASK + 8] {
                [0xff, 0xff, 0xff, 0xff] => Err(Errno::ENOENT),
                [0, 0, 0, 0] => Ok(Vec::new()),
                _ => Err(Errno::EINVAL),
            },
        }
    }

    /// `arp_req_get`: the entry of the named device, as the `struct arpreq` the
    /// program gets back (`ENXIO` if there is none).
    pub(super) fn get(mut self, inside: &Inside) -> Result<[u8; LEN], Errno> {
        if self.bytes[DEVICE] == 0 {
            return Err(Errno::ENODEV);
        }
        let link = self.named_device(inside)?;
        let entry = known(inside, link.index, self.ip()).ok_or(Errno::ENXIO)?;
        if entry.state & crate::modules::vunet::inside::change::NUD_NOARP != 0 {
            return Err(Errno::ENXIO);
        }
        let hardware = &mut self.bytes[HARDWARE_ADDRESS..HARDWARE_ADDRESS + 8];
        hardware[..2].copy_from_slice(&hardware_type(link).to_ne_bytes());
        hardware[2..].copy_from_slice(&entry.mac.unwrap_or_default());
        let flags = match entry.state {
            state if state & NUD_PERMANENT != 0 => ATF_PERM | ATF_COM,
            state if state & NUD_VALID != 0 => ATF_COM,
            _ => 0,
        };
        self.bytes[FLAGS..FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
        self.bytes[DEVICE..DEVICE + IFNAMSIZ].copy_from_slice(&name_bytes(&link.name));
        Ok(self.bytes)
    }
}

/// What `arp_invalidate` notifies of the entries `events` delete: each fails
/// first (`NUD_FAILED`, its hardware address no longer shown), then goes.
pub(super) fn invalidated(events: Vec<Event>) -> Vec<Event> {
    let failing = |entry: NeighbourView| {
        let failed = NeighbourView { state: libc::NUD_FAILED, mac: None, ..entry };
        [Event::NewNeighbour(failed.clone()), Event::DeletedNeighbour(failed)]
    };
    let mut notified = Vec::new();
    for event in events {
        match event {
            Event::DeletedNeighbour(entry) => notified.extend(failing(entry)),
            other => notified.push(other),
        }
    }
    notified
}

/// The entry for `ip` on link `index`, if the stack has one.
fn known(inside: &Inside, index: u32, ip: IpAddr) -> Option<&NeighbourView> {
    inside.neighbours.iter().find(|entry| entry.index == index && entry.ip == ip)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::modules::vunet::inside::ioctl::sockaddr_in;
    use crate::modules::vunet::inside::ioctl::tests::lwip0;

    /// A `struct arpreq` for `ip` with `flags`, on `device` if not empty, with
    /// hardware address 02:00:00:00:00:77 of family `ARPHRD_ETHER`.
    fn arpreq(ip: &str, flags: i32, device: &str) -> [u8; LEN] {
        let mut bytes = [0u8; LEN];
        bytes[..16].copy_from_slice(&sockaddr_in(ip.parse::<Ipv4Addr>().unwrap()));
        bytes[HARDWARE_ADDRESS..HARDWARE_ADDRESS + 8].copy_from_slice(&[1, 0, 2, 0, 0, 0, 0, 0x77]);
        bytes[FLAGS..FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
        bytes[DEVICE..DEVICE + IFNAMSIZ].copy_from_slice(&name_bytes(device));
        bytes
    }

    fn request(bytes: [u8; LEN]) -> Request {
        Request::parse(&bytes).unwrap()
    }

    #[test]
    fn arp_s_sets_a_permanent_entry_that_reads_back_and_deletes() {
        let mut inside = lwip0();
        let set = request(arpreq("10.0.0.77", ATF_PERM | ATF_COM, "")).set(&inside).unwrap();
        for change in &set {
            inside.apply(change).unwrap();
        }
        let entry = &inside.neighbours[0];
        assert_eq!(
            (entry.index, entry.state, entry.mac),
            (2, NUD_PERMANENT, Some([2, 0, 0, 0, 0, 0x77]))
        );
        let mut asked = arpreq("10.0.0.77", 0, "eth0");
        asked[HARDWARE_ADDRESS..HARDWARE_ADDRESS + 8].fill(0);
        let got = request(asked).get(&inside).unwrap();
        assert_eq!(got[HARDWARE_ADDRESS..HARDWARE_ADDRESS + 8], [1, 0, 2, 0, 0, 0, 0, 0x77]);
        assert_eq!(got[FLAGS..FLAGS + 4], (ATF_PERM | ATF_COM).to_ne_bytes());
        assert_eq!(got[NETMASK + 4..NETMASK + 8], [0xff; 4]);
        let delete = request(arpreq("10.0.0.77", 0, "")).delete(&inside).unwrap();
        assert_eq!(
            delete,
            [Change::DeleteNeighbour { index: 2, ip: "10.0.0.77".parse().unwrap() }]
        );
    }

    #[test]
    fn a_deleted_entry_is_notified_failed_then_gone() {
        let entry = NeighbourView {
            index: 2,
            ip: "10.0.0.77".parse().unwrap(),
            mac: Some([2, 0, 0, 0, 0, 0x77]),
            state: NUD_PERMANENT,
            router: false,
        };
        let failed = NeighbourView { state: libc::NUD_FAILED, mac: None, ..entry.clone() };
        assert_eq!(
            invalidated(vec![Event::DeletedNeighbour(entry)]),
            [Event::NewNeighbour(failed.clone()), Event::DeletedNeighbour(failed)]
        );
    }

    #[test]
    fn bogus_requests_fail_in_the_kernels_order() {
        let inside = lwip0();
        let mut other_family = arpreq("10.0.0.77", ATF_PERM, "");
        other_family[0] = libc::AF_INET6 as u8;
        assert!(matches!(Request::parse(&other_family), Err(Errno::EPFNOSUPPORT)));
        let netmask = arpreq("10.0.0.77", libc::ATF_NETMASK, "");
        assert!(matches!(Request::parse(&netmask), Err(Errno::EINVAL)));
        let set = |bytes| request(bytes).set(&inside).unwrap_err();
        assert_eq!(set(arpreq("10.0.0.77", ATF_PERM, "wlan9")), Errno::ENODEV);
        let mut other_type = arpreq("10.0.0.77", ATF_PERM | ATF_COM, "eth0");
        other_type[HARDWARE_ADDRESS] = 2;
        assert_eq!(set(other_type), Errno::EINVAL);
        assert_eq!(set(arpreq("10.5.0.77", ATF_PERM, "")), Errno::ENETUNREACH);
        assert_eq!(set(arpreq("10.0.0.78", 0, "")), Errno::EINVAL, "no address to give");
        assert_eq!(set(arpreq("10.0.0.78", ATF_PUBL | ATF_PERM, "")), Errno::EOPNOTSUPP);
        let get = |bytes| request(bytes).get(&inside).unwrap_err();
        assert_eq!(get(arpreq("10.0.0.77", 0, "")), Errno::ENODEV);
        assert_eq!(get(arpreq("10.0.0.77", 0, "eth0")), Errno::ENXIO);
        let delete = request(arpreq("10.0.0.77", ATF_PUBL, "")).delete(&inside);
        assert_eq!(delete, Err(Errno::ENOENT));
    }
}
