from spdnn.cli import console_main

console_main()
