fn main() {
    match pathway_rules::RuleSet::ms_spasticity() {
        Ok(rs) => { println!("{:?} rules={}", rs.stamp(), rs.rules().count()); for w in rs.warnings() { println!("{w}"); } }
        Err(e) => println!("{e}"),
    }
}
