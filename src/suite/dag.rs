//! The node dependency graph: cycles and ancestors, over node ids (before matrix expansion).

use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

/// Node-level dependency graph: an edge `a → b` means `b` needs `a`.
pub struct NodeGraph {
    graph: DiGraph<usize, ()>,
}

impl NodeGraph {
    /// Builds the graph from each node's list of needed node indices.
    pub fn new(needs: &[Vec<usize>]) -> Self {
        let mut graph = DiGraph::with_capacity(needs.len(), needs.len());
        for i in 0..needs.len() {
            graph.add_node(i);
        }
        for (i, deps) in needs.iter().enumerate() {
            for &d in deps {
                graph.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
            }
        }
        NodeGraph { graph }
    }

    /// One cycle per strongly connected component that has one, as node indices in
    /// dependency order, the first node repeated at the end.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut cycles = Vec::new();
        if toposort(&self.graph, None).is_ok() {
            return cycles;
        }
        // kosaraju_scc walks iteratively, so long dependency chains cannot overflow the stack.
        for component in kosaraju_scc(&self.graph) {
            let is_cycle =
                component.len() > 1 || self.graph.contains_edge(component[0], component[0]);
            if !is_cycle {
                continue;
            }
            let start = *component
                .iter()
                .min_by_key(|n| n.index())
                .unwrap_or(&component[0]);
            cycles.push(self.walk_cycle(start, &component));
        }
        cycles.sort();
        cycles
    }

    /// The shortest path from `start` back to itself inside one component (breadth-first,
    /// without recursion).
    fn walk_cycle(&self, start: NodeIndex, component: &[NodeIndex]) -> Vec<usize> {
        let inside: std::collections::HashSet<NodeIndex> = component.iter().copied().collect();
        let mut parent: std::collections::HashMap<NodeIndex, NodeIndex> = Default::default();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self.graph.neighbors(at).collect();
            next.sort();
            for n in next {
                if n == start {
                    let mut back = Vec::new();
                    let mut cur = at;
                    while cur != start {
                        back.push(cur.index());
                        cur = parent[&cur];
                    }
                    back.reverse();
                    let mut path = vec![start.index()];
                    path.extend(back);
                    path.push(start.index());
                    return path;
                }
                if inside.contains(&n) && !parent.contains_key(&n) {
                    parent.insert(n, at);
                    queue.push_back(n);
                }
            }
        }
        vec![start.index(), start.index()]
    }

    /// Every node that `node` depends on, directly or not.
    pub fn ancestors(&self, node: usize) -> Vec<usize> {
        let mut seen = vec![false; self.graph.node_count()];
        let mut stack = vec![NodeIndex::new(node)];
        while let Some(n) = stack.pop() {
            for p in self
                .graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
            {
                if !seen[p.index()] {
                    seen[p.index()] = true;
                    stack.push(p);
                }
            }
        }
        (0..seen.len()).filter(|&i| seen[i] && i != node).collect()
    }

    /// The stage of each node: 0 for nodes that need nothing, else one more than the
    /// latest stage among the nodes it needs. Requires an acyclic graph.
    pub fn stages(&self) -> Vec<usize> {
        let order = toposort(&self.graph, None).unwrap_or_default();
        let mut stage = vec![0usize; self.graph.node_count()];
        for n in order {
            for next in self.graph.neighbors(n) {
                stage[next.index()] = stage[next.index()].max(stage[n.index()] + 1);
            }
        }
        stage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_in_dependency_order() {
        // 0 needs 2, 1 needs 0, 2 needs 1: 2 → 0 → 1 → 2
        let g = NodeGraph::new(&[vec![2], vec![0], vec![1], vec![]]);
        assert_eq!(g.cycles(), vec![vec![0, 1, 2, 0]]);
        let g = NodeGraph::new(&[vec![0]]);
        assert_eq!(g.cycles(), vec![vec![0, 0]]);
    }

    #[test]
    fn stages_and_ancestors() {
        let g = NodeGraph::new(&[vec![], vec![0], vec![0], vec![1, 2]]);
        assert_eq!(g.stages(), vec![0, 1, 1, 2]);
        assert_eq!(g.ancestors(3), vec![0, 1, 2]);
        assert!(g.cycles().is_empty());
    }
}
