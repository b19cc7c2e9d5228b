wanlink_ipaddr
function wanlink_ipaddr() { return '203.0.113.7';}
var wanlink_ipaddr = [ "a", ["b", {"c": "d]"}] ];
