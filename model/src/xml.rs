//! CSP 1.3 XML codec (being written).
