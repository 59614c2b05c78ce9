// Named by torch's ProcessGroupGloo.hpp; nothing of it is used there (see ../README.md).
#pragma once
