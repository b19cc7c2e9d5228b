curr_coreTmp_wl0_raw = "44&deg;C";
curr_coreTmp_wl1_raw = "<i>disabled</i>";
curr_cpuTemp = "65514";
curr_coreTmp_2_raw_6g = "51&deg;C";
