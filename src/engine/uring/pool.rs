//! Read buffers reused between the files of one ring.

/// Read buffers of finished files, reused: fresh large allocations cost page faults and
/// a kernel copy into cold memory, more than the copy itself.
#[derive(Default)]
pub(super) struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    /// Enough for every slot's head and tail plus some cover art, per ring.
    const MAX_BYTES: usize = 24 << 20;
    const MAX_BUF: usize = 4 << 20;

    /// An empty buffer with room for `len` bytes, or `None` when the allocator refuses
    /// (that file then reads another way; the run goes on).
    pub(super) fn take(&mut self, len: usize) -> Option<Vec<u8>> {
        let fit = self
            .bufs
            .iter()
            .enumerate()
            .rev()
            .take(8)
            .find(|(_, b)| b.capacity() >= len)
            .map(|(i, _)| i);
        match fit {
            Some(i) => {
                let b = self.bufs.swap_remove(i);
                self.bytes -= b.capacity();
                Some(b)
            }
            None => {
                let mut b = Vec::new();
                b.try_reserve_exact(len).ok()?;
                Some(b)
            }
        }
    }

    pub(super) fn put(&mut self, mut b: Vec<u8>) {
        let cap = b.capacity();
        if cap <= Self::MAX_BUF && self.bytes + cap <= Self::MAX_BYTES {
            b.clear();
            self.bytes += cap;
            self.bufs.push(b);
        }
    }
}
