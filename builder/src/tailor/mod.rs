//! Container tailoring of a built rootfs, driven by the recipe's tailor spec
//! and handlebars templates. (being written)

pub mod spec;
