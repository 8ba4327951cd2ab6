//! The bounded FIFO behind the READ cancel-safe queue: a fixed array, so
//! queueing a READ never allocates. The kernel keeps one of these under its
//! CSQ spin lock and stores IRP pointers in it; the logic is here so it is
//! tested on the host.

/// The queue is full: the READ is refused instead of queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Up to `N` items in arrival order.
#[derive(Debug)]
pub struct Slots<T: Copy + PartialEq, const N: usize> {
    // Invariant: `items[..len]` are `Some`, the rest `None`.
    items: [Option<T>; N],
    len: usize,
}

impl<T: Copy + PartialEq, const N: usize> Default for Slots<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + PartialEq, const N: usize> Slots<T, N> {
    pub const fn new() -> Self {
        Slots {
            items: [None; N],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `item` (CsqInsertIrpEx).
    pub fn push(&mut self, item: T) -> Result<(), Full> {
        let slot = self.items.get_mut(self.len).ok_or(Full)?;
        *slot = Some(item);
        // INVARIANT: the slot at the old `len` is now `Some`.
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// Puts `item` back at the head: a READ taken off the queue that could
    /// not be filled stays the oldest, so READs still complete in order.
    pub fn push_front(&mut self, item: T) -> Result<(), Full> {
        let end = self.len.checked_add(1).ok_or(Full)?;
        let live = self.items.get_mut(..end).ok_or(Full)?;
        live.rotate_right(1);
        if let Some(first) = live.first_mut() {
            *first = Some(item);
        }
        // INVARIANT: `items[..end]` are the old `Some`s plus the new head.
        self.len = end;
        Ok(())
    }

    /// Removes `item`, keeping the order of the others (CsqRemoveIrp).
    pub fn remove(&mut self, item: T) -> bool {
        let Some(live) = self.items.get_mut(..self.len) else {
            return false;
        };
        let Some(at) = live.iter().position(|&x| x == Some(item)) else {
            return false;
        };
        if let Some(tail) = live.get_mut(at..) {
            tail.rotate_left(1);
        }
        if let Some(last) = live.last_mut() {
            *last = None;
        }
        // INVARIANT: the removed item was rotated to the end and cleared.
        self.len = self.len.saturating_sub(1);
        true
    }

    /// The first item after `after` (from the start if `None`) that
    /// `matches` (CsqPeekNextIrp). `None` if `after` is not queued.
    pub fn next_after(&self, after: Option<T>, matches: impl Fn(T) -> bool) -> Option<T> {
        let live = self.items.get(..self.len).unwrap_or_default();
        let start = match after {
            None => 0,
            Some(item) => live
                .iter()
                .position(|&x| x == Some(item))?
                .saturating_add(1),
        };
        live.get(start..)?
            .iter()
            .flatten()
            .copied()
            .find(|&x| matches(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_bounded_capacity() {
        let mut q = Slots::<u32, 3>::new();
        assert!(q.is_empty());
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.push(3), Ok(()));
        assert_eq!(q.push(4), Err(Full));
        assert_eq!(q.len(), 3);
        assert_eq!(q.next_after(None, |_| true), Some(1));
        assert!(q.remove(1));
        assert_eq!(q.next_after(None, |_| true), Some(2));
        assert_eq!(q.push(4), Ok(()));
    }

    #[test]
    fn an_item_put_back_is_the_oldest_again() {
        let mut q = Slots::<u32, 3>::new();
        q.push(1).expect("room");
        q.push(2).expect("room");
        assert!(q.remove(1));
        assert_eq!(q.push_front(1), Ok(()));
        assert_eq!(q.next_after(None, |_| true), Some(1));
        assert_eq!(q.next_after(Some(1), |_| true), Some(2));
        q.push(3).expect("room");
        assert_eq!(q.push_front(0), Err(Full));
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn removal_keeps_order_and_rejects_strangers() {
        let mut q = Slots::<u32, 4>::new();
        for i in [10, 20, 30, 40] {
            q.push(i).expect("room");
        }
        assert!(q.remove(20));
        assert!(!q.remove(20));
        assert!(!q.remove(99));
        assert_eq!(q.next_after(None, |_| true), Some(10));
        assert_eq!(q.next_after(Some(10), |_| true), Some(30));
        assert_eq!(q.next_after(Some(30), |_| true), Some(40));
        assert_eq!(q.next_after(Some(40), |_| true), None);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn peek_filters_and_stops_at_unknown_cursor() {
        let mut q = Slots::<u32, 4>::new();
        for i in [1, 2, 3, 4] {
            q.push(i).expect("room");
        }
        let even = |x: u32| x % 2 == 0;
        assert_eq!(q.next_after(None, even), Some(2));
        assert_eq!(q.next_after(Some(2), even), Some(4));
        assert_eq!(q.next_after(Some(4), even), None);
        // A cursor that is no longer queued yields nothing.
        assert_eq!(q.next_after(Some(7), |_| true), None);
    }
}
