// A shared library that is not a flowrun pack: no entry symbol.
extern "C" int not_a_flowrun_pack() { return 42; }
