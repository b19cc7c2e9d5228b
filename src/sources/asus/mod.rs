//! An ASUS router on stock (or Merlin) firmware, through the web API its phone app uses.

pub mod hookjson;
pub mod js;
pub mod parse;
