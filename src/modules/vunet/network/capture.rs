//! A capture as a plug: a tap on a link, wrapped around the plug at its end.
//!
//! Like smoltcp's `phy::PcapWriter` around a device, a [`Capture`] is itself a
//! [`Plug`] that hands every call to the plug it wraps and records, on the way, each
//! frame crossing the link: the frames delivered to the plug and the frames sent from
//! its link. Any kind of plug can be captured, and captures stack (one per file).

use std::os::fd::RawFd;
use std::path::Path;
use std::time::Instant;

use super::link::Frame;
use super::pcap::PcapWriter;
use super::plug::{Outbox, Plug};

/// A plug recorded into a pcap file.
pub(super) struct Capture {
    inner: Box<dyn Plug>,
    writer: PcapWriter,
}

impl Capture {
    /// Records every frame crossing `inner`'s link into `writer`.
    pub(super) fn new(inner: Box<dyn Plug>, writer: PcapWriter) -> Self {
        Self { inner, writer }
    }
}

impl Plug for Capture {
    fn deliver(&mut self, frame: Frame, now: Instant, out: &mut Outbox) {
        // Recorded before the plug handles it, so that its answers follow it in the file.
        self.writer.write_frame(&frame);
        self.inner.deliver(frame, now, out);
    }

    fn accepts(&self) -> bool {
        self.inner.accepts()
    }

    fn sent(&mut self, frame: &[u8]) {
        self.writer.write_frame(frame);
        self.inner.sent(frame);
    }

    fn poll(&mut self, now: Instant, out: &mut Outbox) {
        self.inner.poll(now, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.inner.next_deadline()
    }

    fn watches(&self, fd: RawFd) -> bool {
        self.inner.watches(fd)
    }

    fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Outbox) {
        self.inner.ready(fd, now, out);
    }

    fn busy(&self) -> bool {
        self.inner.busy()
    }

    fn flush(&mut self) {
        self.inner.flush();
        self.writer.flush();
    }

    fn take(&mut self) -> Option<Frame> {
        self.inner.take()
    }

    fn queued(&self) -> usize {
        self.inner.queued()
    }

    fn owner(&self) -> Option<&str> {
        self.inner.owner()
    }

    fn capture_paths(&self) -> Vec<&Path> {
        let mut paths = self.inner.capture_paths();
        paths.push(self.writer.path());
        paths
    }
}
