//! The simulator's prefix cache, vLLM's automatic prefix caching in miniature: a prompt is a
//! chain of fixed-size blocks of words (each block's hash covers every word before it), a new
//! prompt's leading blocks already cached are served from the cache, every full block is then
//! cached, and the least recently used blocks go past a capacity. Looked up as a request
//! arrives; a partial last block is never cached. When an answer is finished its words
//! continue the prompt's chain and the blocks they fill are cached too (as vLLM caches the
//! blocks a decode fills), so the next turn of a conversation finds its history cached.

use std::collections::{BTreeMap, HashMap};

/// Cached blocks by chain hash, least recently used first out.
#[derive(Debug)]
pub struct PrefixCache {
    block_tokens: usize,
    capacity_blocks: usize,
    tick: u64,
    /// Chain hash → the tick it was last used at.
    used: HashMap<u64, u64>,
    /// Tick → chain hash, oldest first.
    order: BTreeMap<u64, u64>,
}

impl PrefixCache {
    /// A cache of `capacity_tokens` in blocks of `block_tokens` words.
    pub fn new(block_tokens: usize, capacity_tokens: u64) -> Self {
        let block_tokens = block_tokens.max(1);
        PrefixCache {
            block_tokens,
            capacity_blocks: (capacity_tokens / block_tokens as u64) as usize,
            tick: 0,
            used: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// The chain of a prompt's words: its full blocks' hashes, and where it stands.
    pub fn chain<'a>(&self, words: impl Iterator<Item = &'a str>) -> Chain {
        let mut chain = Chain {
            block_tokens: self.block_tokens,
            hash: 0xCBF2_9CE4_8422_2325,
            words: 0,
            blocks: Vec::new(),
        };
        chain.extend(words);
        chain
    }

    /// Caches `blocks` as the most recently used, without counting a lookup.
    pub fn remember(&mut self, blocks: &[u64]) {
        for &b in blocks {
            self.tick += 1;
            if let Some(old) = self.used.insert(b, self.tick) {
                self.order.remove(&old);
            }
            self.order.insert(self.tick, b);
        }
        while self.used.len() > self.capacity_blocks {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.used.remove(&oldest);
        }
    }

    /// Tokens of a prompt's `blocks` served from the cache (its leading cached blocks); all
    /// of its blocks are then cached as the most recently used.
    pub fn serve(&mut self, blocks: &[u64]) -> u64 {
        let hits = blocks
            .iter()
            .take_while(|b| self.used.contains_key(b))
            .count();
        self.remember(blocks);
        (hits * self.block_tokens) as u64
    }
}

/// A running chain hash over words: the hashes of the full blocks so far, continuable with
/// the words that follow (an answer after its prompt).
#[derive(Debug, Clone)]
pub struct Chain {
    block_tokens: usize,
    hash: u64,
    words: usize,
    /// The full blocks' chain hashes, in order.
    pub blocks: Vec<u64>,
}

impl Chain {
    /// Continues the chain with `words`; the blocks they fill are appended to `blocks`.
    pub fn extend<'a>(&mut self, words: impl Iterator<Item = &'a str>) {
        for word in words {
            for b in word.bytes().chain([b' ']) {
                self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
            }
            self.words += 1;
            if self.words % self.block_tokens == 0 {
                self.blocks
                    .push(crate::seed::mix(self.hash, self.blocks.len() as u64));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> impl Iterator<Item = &str> {
        text.split_whitespace()
    }

    #[test]
    fn a_shared_prefix_is_served_in_whole_blocks_and_a_new_one_not_at_all() {
        let mut cache = PrefixCache::new(4, 1000);
        let a = cache.chain(words("a b c d e f g h i j")).blocks;
        assert_eq!(
            a.len(),
            2,
            "two full blocks; the partial third is not cached"
        );
        assert_eq!(cache.serve(&a), 0, "nothing cached yet");
        assert_eq!(cache.serve(&a), 8, "the same prompt again: both blocks");
        // Shares the first block and a word of the second: one block.
        let b = cache.chain(words("a b c d e x y z")).blocks;
        assert_eq!(cache.serve(&b), 4);
        // Its first word differs: nothing, though later words match (the chain covers all).
        let c = cache.chain(words("q b c d e f g h")).blocks;
        assert_eq!(cache.serve(&c), 0);
    }

    #[test]
    fn the_least_recently_used_blocks_go_past_the_capacity() {
        let mut cache = PrefixCache::new(2, 4); // two blocks
        let a = cache.chain(words("a a b b")).blocks;
        let b = cache.chain(words("c c d d")).blocks;
        cache.serve(&a);
        cache.serve(&b); // a's blocks are out
        assert_eq!(cache.serve(&a), 0);
        assert_eq!(cache.serve(&a), 4);
    }

    #[test]
    fn an_answer_continues_its_prompt_s_chain_so_the_next_turn_finds_it_cached() {
        let mut cache = PrefixCache::new(4, 1000);
        let mut turn = cache.chain(words("u1 u1 u1 u1 u1 u1"));
        assert_eq!(cache.serve(&turn.blocks), 0);
        turn.extend(words("a1 a1 a1"));
        assert_eq!(turn.blocks.len(), 2, "nine words: two full blocks");
        cache.remember(&turn.blocks);
        // The next turn: the history, then a new user message.
        let next = cache.chain(words("u1 u1 u1 u1 u1 u1 a1 a1 a1 u2 u2"));
        assert_eq!(next.blocks[..2], turn.blocks[..]);
        assert_eq!(
            cache.serve(&next.blocks),
            8,
            "the history's two full blocks"
        );
    }
}
