pub fn trials() -> Vec<libtest_mimic::Trial> { Vec::new() }
pub fn child_probe() -> Option<i32> { None }
