import sys

from keras_evopose.cli import main

sys.exit(main())
